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
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from . import (
    check_new_job,
    describe_url,
    dump_job,
    load_job,
    merge_job,
    ttl_millis,
    url_secrets,
)
from .base import UNFINISHED, Store, StoreError
from .redis_scripts import SCRIPTS

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
UPDATE_ATTEMPTS = 50
PURGE_EVERY = 60.0  # seconds between opportunistic purges (per process)
BATCH = 64  # ids a listing script reads per call (at least)
GRACE_MS = 50  # purge: index scores and key expiry may differ by a millisecond


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
        self._hidden = url_secrets(url)
        self.prefix = prefix
        retry = Retry(ExponentialWithJitterBackoff(cap=0.2, base=0.02), retries=1)
        self._r = redis.Redis.from_url(
            url, decode_responses=True, encoding_errors="replace",
            socket_timeout=5, socket_connect_timeout=5, health_check_interval=30,
            retry=retry,
        )  # fmt: skip
        self._scripts = {n: self._r.register_script(t) for n, t in SCRIPTS.items()}
        self._next_purge = time.monotonic() + PURGE_EVERY

    def _error(self, exc: Exception) -> StoreError:
        text = f"{type(exc).__name__}: {exc}"
        for secret in self._hidden:
            text = text.replace(secret, "***")
        return StoreError(f"Redis store {self.where}: {text}")

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return self._scripts[script](keys=keys, args=args)

    def _k(self, *parts: str) -> str:
        """Return the key name of *parts* (``jimeng:jobs:owner:alice``)."""
        return self.prefix + ":".join(parts)

    # --- jobs ------------------------------------------------------------------

    @_guard
    def create_job(self, job: dict[str, Any]) -> None:
        data = check_new_job(job)
        job_id, status = job["id"], job["status"]
        keys = [
            self._k("job", job_id), self._k("jobs", "owner", job["owner"]),
            self._k("jobs", "unfinished"), self._k("jobs", "status", status),
            self._k("jobs", "statuses"), self._k("jobs", "owners"),
        ]  # fmt: skip
        unfinished = "1" if status in UNFINISHED else "0"
        args = [data, job_id, repr(float(job["created_at"])), status, unfinished]
        if not self._run("CREATE", keys, [*args, job["owner"]]):
            raise KeyError(job_id)
        if time.monotonic() >= self._next_purge:
            self._purge_quietly()

    @_guard
    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return load_job(self._r.get(self._k("job", job_id)), job_id)

    @_guard
    def update_job(
        self, job_id: str, changes: dict[str, Any], *, ttl: float | None = None
    ) -> dict[str, Any] | None:
        px = "" if ttl is None else ttl_millis(ttl)
        for _ in range(UPDATE_ATTEMPTS):  # optimistic: compare-and-set, or again
            raw = self._r.get(self._k("job", job_id))
            if (old := load_job(raw, job_id)) is None:
                return None
            job = merge_job(old, changes)
            keys = [
                self._k("job", job_id), self._k("jobs", "unfinished"),
                self._k("jobs", "status", str(old.get("status"))),
                self._k("jobs", "status", job["status"]), self._k("jobs", "statuses"),
            ]  # fmt: skip
            unfinished = "1" if job["status"] in UNFINISHED else "0"
            created = repr(float(job["created_at"]))
            args = [raw, dump_job(job), job_id, created, unfinished, job["status"], px]
            done = self._run("UPDATE", keys, args)
            if done != 0:
                return job if done == 1 else None
        raise StoreError(f"Redis store {self.where}: job {job_id} kept changing")

    @_guard
    def delete_job(self, job_id: str) -> bool:
        owner = self._r.hget(self._k("jobs", "owners"), job_id)
        statuses = self._r.smembers(self._k("jobs", "statuses"))
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(self._k("job", job_id))
        self._unindex(pipe, job_id, owner, statuses)
        return pipe.execute()[0] > 0

    def _unindex(
        self, pipe: Any, job_id: str, owner: str | None, statuses: set[str]
    ) -> None:
        """Queue the removal of *job_id* from the job indexes on *pipe*."""
        pipe.zrem(self._k("jobs", "unfinished"), job_id)
        if owner is not None:
            pipe.zrem(self._k("jobs", "owner", owner), job_id)
        for status in statuses:
            pipe.zrem(self._k("jobs", "status", status), job_id)
        pipe.hdel(self._k("jobs", "owners"), job_id)

    def _page(
        self, zset: str, after: str | None, want: int, *, newest: bool, values: bool
    ) -> list[tuple[str, str]] | None:
        """Read up to *want* live entries of *zset* after *after* (a live job);
        None if *after* is not there. Several script calls when ids are stale."""
        found: list[tuple[str, str]] = []
        cursor, check = after or "", "1"
        flags = ["rev" if newest else "fwd", "1" if values else "0"]
        while len(found) < want:
            args = [self._k("job", ""), cursor, want - len(found), max(want, BATCH)]
            out = self._run("PAGE", [zset], [*args, check, *flags])
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
        zset, limit = self._k("jobs", "owner", owner), max(limit, 0)
        while len(jobs) <= limit:
            want = limit + 1 - len(jobs)
            if not (rows := self._page(zset, after, want, newest=True, values=True)):
                break
            jobs += [job for i, raw in rows if (job := load_job(raw, i)) is not None]
            after = rows[-1][0]  # only corrupt records make a second round
        return jobs[:limit], len(jobs) > limit

    @_guard
    def unfinished_jobs(self, limit: int = 10000) -> list[str]:
        zset = self._k("jobs", "unfinished")
        rows = self._page(zset, None, limit, newest=False, values=False)
        return [job_id for job_id, _ in rows or []]

    @_guard
    def count_jobs(self) -> dict[str, int]:
        statuses = sorted(self._r.smembers(self._k("jobs", "statuses")))
        pipe = self._r.pipeline(transaction=False)
        for status in statuses:
            zset = self._k("jobs", "status", status)
            self._scripts["COUNT"](keys=[zset], client=pipe)
        return {s: n for s, n in zip(statuses, pipe.execute(), strict=True) if n}

    # --- keys with TTLs ----------------------------------------------------------

    @_guard
    def set_key(
        self, key: str, value: str, ttl: float | None = None, *, only_new: bool = False
    ) -> bool:
        px = None if ttl is None else ttl_millis(ttl)
        return bool(self._r.set(self._k("key", key), value, px=px, nx=only_new))

    @_guard
    def get_key(self, key: str) -> str | None:
        return self._r.get(self._k("key", key))

    @_guard
    def delete_key(self, key: str, *, value: str | None = None) -> bool:
        if value is None:
            return self._r.delete(self._k("key", key)) > 0
        return self._run("DELETE_IF", [self._k("key", key)], [value]) > 0

    @_guard
    def incr(self, key: str, ttl: float) -> int:
        try:
            return self._run("INCR", [self._k("key", key)], [ttl_millis(ttl)])
        except redis.ResponseError as exc:
            if "not an integer" not in str(exc):
                raise
            raise ValueError(f"key {key!r} does not hold a counter") from None

    # --- leases ------------------------------------------------------------------

    @_guard
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        keys, args = [self._k("lease", name)], [holder, ttl_millis(ttl)]
        return self._run("ACQUIRE", keys, args) == 1

    @_guard
    def renew_leases(self, names: list[str], holder: str, ttl: float) -> list[str]:
        if not names:
            return []
        keys = [self._k("lease", name) for name in names]
        kept = self._run("RENEW", keys, [holder, ttl_millis(ttl)])
        return [names[i - 1] for i in kept]

    @_guard
    def release_lease(self, name: str, holder: str) -> None:
        self._run("DELETE_IF", [self._k("lease", name)], [holder])

    @_guard
    def lease_holder(self, name: str) -> str | None:
        return self._r.get(self._k("lease", name))

    # --- counted slots -----------------------------------------------------------

    @_guard
    def take_slot(self, group: str, member: str, cap: int, ttl: float) -> bool:
        args = [ttl_millis(ttl), member, cap]
        return self._run("TAKE", [self._k("slots", group)], args) == 1

    @_guard
    def renew_slots(self, group: str, members: list[str], ttl: float) -> None:
        if members:
            args = [ttl_millis(ttl), *members]
            self._run("RENEW_SLOTS", [self._k("slots", group)], args)

    @_guard
    def free_slot(self, group: str, member: str) -> None:
        self._r.zrem(self._k("slots", group), member)

    @_guard
    def slot_count(self, group: str) -> int:
        return self._run("COUNT", [self._k("slots", group)], [])

    # --- housekeeping ------------------------------------------------------------

    @_guard
    def ping(self) -> None:
        self._r.ping()

    @_guard
    def purge(self) -> int:
        """Drop the index entries of jobs that expired; return how many jobs."""
        return self._purge()

    def _purge_quietly(self) -> None:
        """A bounded purge after a write; its failure must not fail the write."""
        try:
            self._purge(batches=1)
        except redis.RedisError as exc:
            log.warning(
                "Redis store %s: purge failed: %s", self.where, type(exc).__name__
            )

    def _purge(self, batches: int | None = None) -> int:
        """Clean up to *batches* batches per status (all, when None)."""
        self._next_purge = time.monotonic() + PURGE_EVERY
        seconds, micros = self._r.time()
        cutoff = seconds * 1000 + micros // 1000 - GRACE_MS
        statuses = self._r.smembers(self._k("jobs", "statuses"))
        gone = 0
        for status in statuses:
            zset, rounds = self._k("jobs", "status", status), 0
            while batches is None or rounds < batches:
                ids = self._r.zrangebyscore(zset, "-inf", cutoff, start=0, num=500)
                if not ids:
                    break
                gone, rounds = gone + self._forget(ids), rounds + 1
                self._r.zrem(zset, *ids)
        return gone

    def _forget(self, ids: list[str]) -> int:
        """Drop expired *ids* whose record is gone from the other indexes."""
        pipe = self._r.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(self._k("job", job_id))
        alive = pipe.execute()
        owners = self._r.hmget(self._k("jobs", "owners"), ids)
        dead = [(i, o) for i, o, a in zip(ids, owners, alive, strict=True) if not a]
        pipe = self._r.pipeline(transaction=True)
        for job_id, owner in dead:
            self._unindex(pipe, job_id, owner, set())
        pipe.execute()
        return len(dead)

    def close(self) -> None:
        self._r.close()
