"""The Redis backend: several hosts share one (standalone) Redis server.

Key layout, every name behind ``prefix`` (``jimeng:`` by default):

=========================  ======  ==============================================
``job:<id>``               string  the job's JSON; ``PEXPIRE`` once it has a TTL
``jobs:owner:<owner>``     zset    id → created_at (``list_jobs``)
``jobs:unfinished``        zset    id → created_at, status in ``UNFINISHED``
``jobs:status:<status>``   zset    id → expiry in ms of Redis' clock (``inf``)
``jobs:statuses``          set     every status used (``count_jobs``)
``jobs:owners``            hash    id → owner (index cleanup after expiry)
``key:<key>``              string  ``set_key`` and ``incr``
``lease:<name>``           string  the holder (``SET NX PX``)
``slots:<group>``          zset    member → expiry in ms of Redis' clock
=========================  ======  ==============================================

Expiry is Redis' own: ``PX`` on strings, and for zsets an expiry score compared
with ``TIME`` inside Lua, so every host agrees on one clock. Index entries of an
expired job are dropped lazily (by the listing that meets them) and by
``purge()``. Each read-modify-write is one Lua script (atomic on the server);
``update_job`` merges in Python and writes with a compare-and-set script,
retrying when another client wrote in between. Scripts build some key names
from the prefix, so this runs on a standalone server, not on Redis Cluster.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from . import check_new_job, dump_job, load_job, merge_job, ttl_millis
from .base import UNFINISHED, Store, StoreError

F = TypeVar("F", bound=Callable[..., Any])
UPDATE_ATTEMPTS = 50
BATCH = 64  # ids a listing script reads per call (at least)

NOW = """local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
CREATE = """if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2]) end
redis.call('ZADD', KEYS[4], 'inf', ARGV[2])
redis.call('SADD', KEYS[5], ARGV[4])
redis.call('HSET', KEYS[6], ARGV[2], ARGV[6])
return 1"""
# KEYS: job, unfinished, old status, new status, statuses
# ARGV: old json, new json, id, created_at, unfinished?, status, ttl ms or ''
UPDATE = f"""{NOW}local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
local score = 'inf'
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[7])
  score = string.format('%d', now + tonumber(ARGV[7]))
else
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  local left = redis.call('PTTL', KEYS[1])
  if left >= 0 then score = string.format('%d', now + left) end
end
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[4], score, ARGV[3])
redis.call('SADD', KEYS[5], ARGV[6])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
else redis.call('ZREM', KEYS[2], ARGV[3]) end
return 1"""
# KEYS: an id zset. ARGV: job key prefix, after id or '', want, batch,
# check the after job is live?, 'rev' (newest first) or 'fwd', values?
# Returns {cursor, id, value-or-1, ...}; cursor '' when the zset is exhausted,
# false when *after* is not in the zset (or not live, when checked).
PAGE = """local zkey, prefix, after = KEYS[1], ARGV[1], ARGV[2]
local want, batch, rev = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[6] == 'rev'
local start = 0
if after ~= '' then
  local rank = redis.call(rev and 'ZREVRANK' or 'ZRANK', zkey, after)
  if not rank then return false end
  if ARGV[5] == '1' and redis.call('EXISTS', prefix .. after) == 0 then return false end
  start = rank + 1
end
local ids = redis.call(rev and 'ZREVRANGE' or 'ZRANGE', zkey, start, start + batch - 1)
local out, stale, found, last = {''}, {}, 0, nil
for _, id in ipairs(ids) do
  last = id
  local v
  if ARGV[7] == '1' then v = redis.call('GET', prefix .. id)
  elseif redis.call('EXISTS', prefix .. id) == 1 then v = '1' end
  if v then
    found = found + 1
    out[#out + 1] = id
    out[#out + 1] = v
    if found == want then break end
  else
    stale[#stale + 1] = id
  end
end
if found == want or #ids == batch then
  out[1] = last
  if stale[#stale] == last then stale[#stale] = nil end
end
for i = 1, #stale, 100 do
  redis.call('ZREM', zkey, unpack(stale, i, math.min(i + 99, #stale)))
end
return out"""
INCR = """local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n"""
ACQUIRE = """local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1"""
RENEW = """local kept = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    kept[#kept + 1] = i
  end
end
return kept"""
DELETE_IF = """if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0"""
# slots: drop expired members, then keep the key alive as long as its last one
SLOTS = f"""{NOW}redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local function keep_alive()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', KEYS[1], string.format('%d', tonumber(last[2])))
  end
end
local expiry = string.format('%d', now + tonumber(ARGV[1]))
"""
TAKE = f"""{SLOTS}if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('ZADD', KEYS[1], expiry, ARGV[2])
keep_alive()
return 1"""
RENEW_SLOTS = f"""{SLOTS}for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i])
end
keep_alive()
return 1"""
COUNT = NOW + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')"
SCRIPTS = {
    "CREATE": CREATE, "UPDATE": UPDATE, "PAGE": PAGE, "INCR": INCR,
    "ACQUIRE": ACQUIRE, "RENEW": RENEW, "DELETE_IF": DELETE_IF, "TAKE": TAKE,
    "RENEW_SLOTS": RENEW_SLOTS, "COUNT": COUNT,
}  # fmt: skip


def describe_url(url: str) -> str:
    """Return *url* without credentials or query (safe for messages)."""
    parts = urlsplit(url)
    where = parts.path if parts.scheme == "unix" else parts.netloc.rpartition("@")[2]
    if parts.scheme != "unix" and parts.path not in ("", "/"):
        where += parts.path
    return f"{parts.scheme}://{where}"


def _secrets(url: str) -> list[str]:
    """Return the password(s) in *url*, raw and decoded."""
    parts = urlsplit(url)
    found = [parts.password or "", *parse_qs(parts.query).get("password", [])]
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def _guard(method: F) -> F:
    """Turn redis-py errors into ``StoreError`` (without any password)."""

    @functools.wraps(method)
    def wrapper(self: RedisStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except redis.RedisError as exc:
            raise self._error(exc) from None

    return wrapper  # type: ignore[return-value]


class RedisStore(Store):
    """``Store`` on a Redis server (``redis://``, ``rediss://``, ``unix://``)."""

    def __init__(self, url: str, *, prefix: str = "jimeng:") -> None:
        self.where = describe_url(url)
        self._hidden = _secrets(url)
        self.prefix = prefix
        retry = Retry(ExponentialWithJitterBackoff(cap=0.2, base=0.02), retries=1)
        self._r = redis.Redis.from_url(
            url, decode_responses=True, encoding_errors="replace",
            socket_timeout=5, socket_connect_timeout=5, health_check_interval=30,
            retry=retry,
        )  # fmt: skip
        self._scripts = {n: self._r.register_script(t) for n, t in SCRIPTS.items()}

    def _error(self, exc: Exception) -> StoreError:
        text = f"{type(exc).__name__}: {exc}"
        for secret in self._hidden:
            text = text.replace(secret, "***")
        return StoreError(f"Redis store {self.where}: {text}")

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return self._scripts[script](keys=keys, args=args)

    # --- key names ---------------------------------------------------------------

    def _job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _jobs(self, part: str) -> str:
        return f"{self.prefix}jobs:{part}"

    # --- jobs ------------------------------------------------------------------

    @_guard
    def create_job(self, job: dict[str, Any]) -> None:
        data = check_new_job(job)
        job_id, status = job["id"], job["status"]
        keys = [
            self._job(job_id), self._jobs(f"owner:{job['owner']}"),
            self._jobs("unfinished"), self._jobs(f"status:{status}"),
            self._jobs("statuses"), self._jobs("owners"),
        ]  # fmt: skip
        unfinished = "1" if status in UNFINISHED else "0"
        args = [data, job_id, repr(float(job["created_at"])), status, unfinished]
        if not self._run("CREATE", keys, [*args, job["owner"]]):
            raise KeyError(job_id)

    @_guard
    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return load_job(self._r.get(self._job(job_id)), job_id)

    @_guard
    def update_job(
        self, job_id: str, changes: dict[str, Any], *, ttl: float | None = None
    ) -> dict[str, Any] | None:
        for _ in range(UPDATE_ATTEMPTS):
            raw = self._r.get(self._job(job_id))
            old = load_job(raw, job_id)
            if old is None:
                return None
            job = merge_job(old, changes)
            keys = [
                self._job(job_id), self._jobs("unfinished"),
                self._jobs(f"status:{old.get('status')}"),
                self._jobs(f"status:{job['status']}"), self._jobs("statuses"),
            ]  # fmt: skip
            unfinished = "1" if job["status"] in UNFINISHED else "0"
            created = repr(float(job["created_at"]))
            args = [raw, dump_job(job), job_id, created, unfinished, job["status"]]
            done = self._run(
                "UPDATE", keys, [*args, "" if ttl is None else ttl_millis(ttl)]
            )
            if done == 1:
                return job
            if done == -1:
                return None
        raise StoreError(f"Redis store {self.where}: job {job_id} kept changing")

    @_guard
    def delete_job(self, job_id: str) -> bool:
        owner = self._r.hget(self._jobs("owners"), job_id)
        statuses = self._r.smembers(self._jobs("statuses"))
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(self._job(job_id))
        self._drop_from_indexes(pipe, job_id, owner, statuses)
        return pipe.execute()[0] > 0

    def _drop_from_indexes(
        self, pipe: Any, job_id: str, owner: str | None, statuses: set[str]
    ) -> None:
        """Queue the removal of *job_id* from every job index on *pipe*."""
        pipe.zrem(self._jobs("unfinished"), job_id)
        if owner is not None:
            pipe.zrem(self._jobs(f"owner:{owner}"), job_id)
        for status in statuses:
            pipe.zrem(self._jobs(f"status:{status}"), job_id)
        pipe.hdel(self._jobs("owners"), job_id)

    def _page(
        self, zset: str, after: str | None, want: int, *, newest: bool, values: bool
    ) -> list[tuple[str, str]] | None:
        """Read up to *want* live entries of *zset* after *after* (a live job);
        None if *after* is not there. Several script calls when ids are stale."""
        found: list[tuple[str, str]] = []
        cursor, check = after or "", "1"
        while len(found) < want:
            args = [self._job(""), cursor, want - len(found), max(want, BATCH), check]
            flags = ["rev" if newest else "fwd", "1" if values else "0"]
            out = self._run("PAGE", [zset], [*args, *flags])
            if out is None:
                return None if check == "1" and after is not None else found
            cursor, check = out[0], "0"
            found += zip(out[1::2], out[2::2], strict=True)
            if not cursor:
                break
        return found

    @_guard
    def list_jobs(
        self, owner: str, *, limit: int, after: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        jobs: list[dict[str, Any]] = []
        zset = self._jobs(f"owner:{owner}")
        while len(jobs) <= limit:
            rows = self._page(
                zset, after, limit + 1 - len(jobs), newest=True, values=True
            )
            if not rows:
                break
            jobs += [job for i, raw in rows if (job := load_job(raw, i)) is not None]
            after = rows[-1][0]  # only corrupt records make a second round
        return jobs[:limit], len(jobs) > limit

    @_guard
    def unfinished_jobs(self, limit: int = 10000) -> list[str]:
        rows = self._page(
            self._jobs("unfinished"), None, limit, newest=False, values=False
        )
        return [job_id for job_id, _ in rows or []]

    @_guard
    def count_jobs(self) -> dict[str, int]:
        statuses = sorted(self._r.smembers(self._jobs("statuses")))
        pipe = self._r.pipeline(transaction=False)
        for status in statuses:
            self._scripts["COUNT"](keys=[self._jobs(f"status:{status}")], client=pipe)
        return {s: n for s, n in zip(statuses, pipe.execute(), strict=True) if n}

    # --- keys with TTLs ----------------------------------------------------------

    def _key(self, key: str) -> str:
        return f"{self.prefix}key:{key}"

    @_guard
    def set_key(
        self, key: str, value: str, ttl: float | None = None, *, only_new: bool = False
    ) -> bool:
        px = None if ttl is None else ttl_millis(ttl)
        return bool(self._r.set(self._key(key), value, px=px, nx=only_new))

    @_guard
    def get_key(self, key: str) -> str | None:
        return self._r.get(self._key(key))

    @_guard
    def delete_key(self, key: str, *, value: str | None = None) -> bool:
        if value is None:
            return self._r.delete(self._key(key)) > 0
        return self._run("DELETE_IF", [self._key(key)], [value]) > 0

    @_guard
    def incr(self, key: str, ttl: float) -> int:
        try:
            return self._run("INCR", [self._key(key)], [ttl_millis(ttl)])
        except redis.ResponseError as exc:
            if "not an integer" not in str(exc):
                raise
            raise ValueError(f"key {key!r} does not hold a counter") from None

    # --- leases ------------------------------------------------------------------

    def _lease(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    @_guard
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        return self._run("ACQUIRE", [self._lease(name)], [holder, ttl_millis(ttl)]) == 1

    @_guard
    def renew_leases(self, names: list[str], holder: str, ttl: float) -> list[str]:
        if not names:
            return []
        keys = [self._lease(name) for name in names]
        kept = self._run("RENEW", keys, [holder, ttl_millis(ttl)])
        return [names[i - 1] for i in kept]

    @_guard
    def release_lease(self, name: str, holder: str) -> None:
        self._run("DELETE_IF", [self._lease(name)], [holder])

    @_guard
    def lease_holder(self, name: str) -> str | None:
        return self._r.get(self._lease(name))

    # --- counted slots -----------------------------------------------------------

    def _slots(self, group: str) -> str:
        return f"{self.prefix}slots:{group}"

    @_guard
    def take_slot(self, group: str, member: str, cap: int, ttl: float) -> bool:
        args = [ttl_millis(ttl), member, cap]
        return self._run("TAKE", [self._slots(group)], args) == 1

    @_guard
    def renew_slots(self, group: str, members: list[str], ttl: float) -> None:
        if members:
            self._run("RENEW_SLOTS", [self._slots(group)], [ttl_millis(ttl), *members])

    @_guard
    def free_slot(self, group: str, member: str) -> None:
        self._r.zrem(self._slots(group), member)

    @_guard
    def slot_count(self, group: str) -> int:
        return self._run("COUNT", [self._slots(group)], [])

    # --- housekeeping ------------------------------------------------------------

    @_guard
    def ping(self) -> None:
        self._r.ping()

    @_guard
    def purge(self) -> int:
        """Drop the index entries of jobs that expired; return how many jobs."""
        seconds, micros = self._r.time()
        now = seconds * 1000 + micros // 1000
        statuses = self._r.smembers(self._jobs("statuses"))
        gone = 0
        for status in statuses:
            zset = self._jobs(f"status:{status}")
            while ids := self._r.zrangebyscore(zset, "-inf", now, start=0, num=500):
                gone += self._forget_expired(ids, statuses)
                self._r.zrem(zset, *ids)
        return gone

    def _forget_expired(self, ids: list[str], statuses: set[str]) -> int:
        """Remove expired *ids* (their keys gone) from the other indexes."""
        pipe = self._r.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(self._job(job_id))
        alive = pipe.execute()
        owners = self._r.hmget(self._jobs("owners"), ids)
        pipe = self._r.pipeline(transaction=True)
        dead = [(i, o) for i, o, a in zip(ids, owners, alive, strict=True) if not a]
        for job_id, owner in dead:
            self._drop_from_indexes(pipe, job_id, owner, set())
        pipe.execute()
        return len(dead)

    def close(self) -> None:
        self._r.close()
