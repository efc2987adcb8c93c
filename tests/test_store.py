"""The store's contract, run against every backend: a SQLite file, a real
``redis-server`` and the in-memory dicts; then what is particular to each
(unreachable servers, corrupt files, fork, URLs); and OS processes racing for
one slot, one lease, one counter and one job record."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import warnings
from contextlib import closing
from typing import Any

import pytest

from jimeng_api.store import Store, StoreError, describe_url, open_store
from jimeng_api.store.memory import MemoryStore
from jimeng_api.store.redis import RedisStore
from jimeng_api.store.sqlite import SqliteStore
from tests.redis_server import free_port, redis_installed, start_redis, stop_redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHORT = 0.2  # a TTL that runs out within a test
WAIT = 0.3  # sleeping this long lets SHORT run out
LONG = 30.0  # a TTL that does not


@pytest.fixture(scope="session")
def redis_url():
    """One throwaway redis-server for the session (each test has a prefix)."""
    if not redis_installed():
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message + "; it is required when CI is set")
        pytest.skip(message)
    proc, url = start_redis()
    yield url
    stop_redis(proc)


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture(params=["sqlite", "redis", "memory"])
def store(request, tmp_path):
    if request.param == "sqlite":
        backend: Store = SqliteStore(str(tmp_path / "store.sqlite3"))
    elif request.param == "redis":
        backend = RedisStore(request.getfixturevalue("redis_url"), prefix=_prefix())
    else:
        backend = MemoryStore()
    yield backend
    backend.close()


def job(job_id: str, owner: str = "alice", created_at: float = 1000.0, **fields):
    return {"id": job_id, "owner": owner, "status": "queued",
            "created_at": created_at, **fields}  # fmt: skip


def corrupt(store: Store, job_id: str, raw: str) -> None:
    """Overwrite a job's stored record with *raw*, behind the store's back."""
    if isinstance(store, SqliteStore):
        with closing(sqlite3.connect(store.path)) as db, db:
            db.execute("UPDATE jobs SET data = ? WHERE id = ?", (raw, job_id))
    elif isinstance(store, RedisStore):
        assert store._r.set(store._k("job", job_id), raw, xx=True, keepttl=True)
    else:
        store._jobs[job_id].data = raw


# --- jobs ------------------------------------------------------------------------


def test_create_and_get_return_equal_copies(store):
    record = job("j1", result={"urls": ["https://a/1.png"], "tags": []}, note="猫 ✓")
    store.create_job(record)
    got = store.get_job("j1")
    assert got == record
    got["status"] = "mutated"
    got["result"]["urls"].append("x")
    assert store.get_job("j1") == record
    assert store.get_job("nope") is None


def test_create_twice_raises_key_error_and_keeps_the_first(store):
    store.create_job(job("j1", note="first"))
    with pytest.raises(KeyError):
        store.create_job(job("j1", note="second"))
    assert store.get_job("j1")["note"] == "first"


@pytest.mark.parametrize("missing", ["id", "owner", "status", "created_at"])
def test_create_rejects_a_job_without_a_required_field(store, missing):
    record = job("j1")
    del record[missing]
    with pytest.raises(ValueError):
        store.create_job(record)


def test_update_merges_top_level_fields(store):
    store.create_job(job("j1", result={"a": 1, "b": 2}, keep="me"))
    changes = {"status": "in_progress", "result": {"a": 9}, "list": [], "none": None}
    new = store.update_job("j1", changes)
    assert new == {**job("j1", keep="me"), **changes}
    assert store.get_job("j1") == new
    assert store.update_job("j1", {"owner": "alice", "id": "j1"}) == new
    with pytest.raises(ValueError):
        store.update_job("j1", {"owner": "mallory"})
    with pytest.raises(ValueError):
        store.update_job("j1", {"created_at": 5.0})
    assert store.get_job("j1") == new
    assert store.update_job("unknown", {"status": "failed"}) is None


def test_status_changes_keep_the_unfinished_index(store):
    for i, name in enumerate(["c", "a", "b", "d"]):
        store.create_job(job(name, created_at=100.0 + i))
    assert store.unfinished_jobs() == ["c", "a", "b", "d"]  # oldest first
    assert store.unfinished_jobs(limit=2) == ["c", "a"]
    store.update_job("a", {"status": "in_progress"})
    store.update_job("b", {"status": "completed"})
    store.update_job("d", {"status": "failed"})
    assert store.unfinished_jobs() == ["c", "a"]
    store.update_job("d", {"status": "queued"})
    assert store.unfinished_jobs() == ["c", "a", "d"]
    assert store.count_jobs() == {"queued": 2, "in_progress": 1, "completed": 1}


def test_a_finished_job_expires_after_its_ttl(store):
    store.create_job(job("done", created_at=1.0))
    store.create_job(job("stays", created_at=2.0))
    store.create_job(job("running", created_at=3.0, status="in_progress"))
    store.update_job("done", {"status": "completed"}, ttl=SHORT)
    store.update_job("done", {"seen": True})  # no ttl: the earlier one holds
    store.update_job("running", {"step": 1}, ttl=SHORT)
    assert store.get_job("done")["seen"] is True
    time.sleep(WAIT)
    assert store.get_job("done") is None
    assert store.update_job("done", {"status": "failed"}) is None
    assert store.delete_job("done") is False
    assert [j["id"] for j in store.list_jobs("alice", limit=10)[0]] == ["stays"]
    assert store.unfinished_jobs() == ["stays"]
    assert store.count_jobs() == {"queued": 1}
    store.create_job(job("done", note="again"))  # an expired id can be reused
    assert store.get_job("done")["note"] == "again"


def test_delete_job(store):
    store.create_job(job("j1"))
    assert store.delete_job("j1") is True
    assert store.get_job("j1") is None
    assert store.delete_job("j1") is False
    assert store.list_jobs("alice", limit=5) == ([], False)
    assert store.unfinished_jobs() == [] and store.count_jobs() == {}


def test_list_jobs_newest_first_with_pages(store):
    times = {"j1": 1.0, "j2": 2.0, "j3a": 3.0, "j3b": 3.0, "j4": 4.0, "j5": 5.5}
    for job_id, created in times.items():
        store.create_job(job(job_id, created_at=created))
    store.create_job(job("bob1", owner="bob", created_at=9.0))
    expected = ["j5", "j4", "j3b", "j3a", "j2", "j1"]  # ties: id descending
    jobs, more = store.list_jobs("alice", limit=10)
    assert [j["id"] for j in jobs] == expected and more is False
    pages, after, more = [], None, True
    while more:
        jobs, more = store.list_jobs("alice", limit=4, after=after)
        pages.append([j["id"] for j in jobs])
        after = jobs[-1]["id"] if jobs else None
    assert pages == [expected[:4], expected[4:]]
    assert store.list_jobs("alice", limit=3, after="j4")[1] is True
    assert store.list_jobs("alice", limit=3, after="j3a") == (
        [store.get_job("j2"), store.get_job("j1")], False)  # fmt: skip
    assert store.list_jobs("alice", limit=2, after="j1") == ([], False)
    assert store.list_jobs("alice", limit=0) == ([], True)
    assert store.list_jobs("alice", limit=-1) == ([], True)
    assert [j["id"] for j in store.list_jobs("bob", limit=9)[0]] == ["bob1"]
    assert store.list_jobs("bob", limit=9, after="j4") == ([], False)
    assert store.list_jobs("alice", limit=9, after="bob1") == ([], False)
    assert store.list_jobs("alice", limit=9, after="unknown") == ([], False)
    assert store.list_jobs("nobody", limit=9) == ([], False)


def test_list_jobs_after_an_expired_job_is_empty(store):
    store.create_job(job("old", created_at=1.0))
    store.create_job(job("new", created_at=2.0))
    store.update_job("new", {"status": "completed"}, ttl=SHORT)
    time.sleep(WAIT)
    assert store.list_jobs("alice", limit=5, after="new") == ([], False)


def test_listings_skip_many_expired_jobs(store):
    store.create_job(job("live", created_at=0.0))
    for i in range(1, 151):  # more than one batch of a Redis listing script
        store.create_job(job(f"x{i:03}", created_at=float(i), status="in_progress"))
        store.update_job(f"x{i:03}", {"step": 1}, ttl=SHORT)
    time.sleep(WAIT)
    for _ in range(2):  # the second time, after any lazy cleanup
        assert store.list_jobs("alice", limit=2) == ([store.get_job("live")], False)
        assert store.unfinished_jobs() == ["live"]


def test_corrupt_records_are_logged_and_skipped(store, caplog):
    for i in range(1, 5):
        store.create_job(job(f"j{i}", created_at=float(i)))
    corrupt(store, "j4", "{not json SECRET")
    corrupt(store, "j3", "[1, 2]")
    with caplog.at_level(logging.WARNING):
        assert store.get_job("j4") is None and store.get_job("j3") is None
        assert [j["id"] for j in store.list_jobs("alice", limit=1)[0]] == ["j2"]
        jobs, more = store.list_jobs("alice", limit=5)
    assert [j["id"] for j in jobs] == ["j2", "j1"] and more is False
    assert store.list_jobs("alice", limit=1) == ([store.get_job("j2")], True)
    assert store.update_job("j4", {"status": "failed"}) is None
    assert caplog.records and "SECRET" not in caplog.text
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert store.delete_job("j4") is True


# --- keys with TTLs --------------------------------------------------------------


def test_set_key_only_new_and_ttl(store):
    assert store.set_key("k", "v1") is True
    assert store.set_key("k", "v2", only_new=True) is False
    assert store.get_key("k") == "v1"
    assert store.set_key("k", "v3", SHORT) is True
    assert store.set_key("other", "x", LONG, only_new=True) is True
    time.sleep(WAIT)
    assert store.get_key("k") is None and store.get_key("other") == "x"
    assert store.set_key("k", "v4", SHORT, only_new=True) is True
    assert store.set_key("k", "v5") is True  # no ttl: the key stays now
    time.sleep(WAIT)
    assert store.get_key("k") == "v5"
    assert store.set_key("gone", "x", 0) is True  # ttl <= 0: expires at once
    time.sleep(0.01)
    assert store.get_key("gone") is None and store.get_key("absent") is None


def test_delete_key_compares_the_value_when_given(store):
    store.set_key("lock", "mine")
    assert store.delete_key("lock", value="theirs") is False
    assert store.get_key("lock") == "mine"
    assert store.delete_key("lock", value="mine") is True
    assert store.get_key("lock") is None
    assert store.delete_key("lock") is False
    store.set_key("lock", "x")
    assert store.delete_key("lock") is True


def test_incr_counts_in_fixed_windows(store):
    assert [store.incr("n", 0.5) for _ in range(3)] == [1, 2, 3]
    time.sleep(0.3)
    assert store.incr("n", 0.5) == 4  # the window is not extended (to 0.8 s)
    time.sleep(0.3)
    assert store.incr("n", 0.5) == 1
    assert store.incr("m", LONG) == 1
    store.set_key("text", "abc")
    with pytest.raises(ValueError):
        store.incr("text", LONG)


# --- leases ----------------------------------------------------------------------


def test_a_lease_has_one_holder(store):
    assert store.acquire_lease("job:1", "w1", LONG) is True
    assert store.acquire_lease("job:1", "w2", LONG) is False
    assert store.acquire_lease("job:1", "w1", LONG) is True  # renewed
    assert store.lease_holder("job:1") == "w1"
    store.release_lease("job:1", "w2")  # not theirs: no-op
    assert store.lease_holder("job:1") == "w1"
    store.release_lease("job:1", "w1")
    assert store.lease_holder("job:1") is None
    assert store.acquire_lease("job:1", "w2", LONG) is True
    assert store.lease_holder("never") is None


def test_leases_renew_for_their_holder_and_are_stolen_after_expiry(store):
    store.acquire_lease("a", "w1", 0.5)
    store.acquire_lease("b", "w1", SHORT)
    store.acquire_lease("c", "w2", LONG)
    time.sleep(0.1)
    assert store.renew_leases(["a", "c", "nope"], "w1", LONG) == ["a"]
    assert store.renew_leases([], "w1", LONG) == []
    time.sleep(0.5)  # past the first TTL of a, and b's
    assert store.lease_holder("a") == "w1" and store.lease_holder("b") is None
    assert store.acquire_lease("b", "w2", LONG) is True  # b ran out: taken
    assert store.renew_leases(["b", "a"], "w1", LONG) == ["a"]
    assert store.lease_holder("b") == "w2" and store.lease_holder("c") == "w2"


# --- slots -----------------------------------------------------------------------


def test_slots_respect_the_cap(store):
    assert store.take_slot("acct", "t1", 2, LONG) is True
    assert store.take_slot("acct", "t2", 2, LONG) is True
    assert store.take_slot("acct", "t3", 2, LONG) is False
    assert store.take_slot("acct", "t1", 2, LONG) is True  # already in: renewed
    assert store.slot_count("acct") == 2
    store.free_slot("acct", "t1")
    store.free_slot("acct", "absent")
    assert store.take_slot("acct", "t3", 2, LONG) is True
    assert store.take_slot("acct", "t4", 2, LONG) is False
    assert store.slot_count("acct") == 2 and store.slot_count("other") == 0
    assert store.take_slot("zero", "t1", 0, LONG) is False


def test_slots_expire_unless_renewed(store):
    store.take_slot("acct", "t1", 2, 0.5)
    store.take_slot("acct", "t2", 2, 0.5)
    time.sleep(0.1)
    store.renew_slots("acct", ["t1", "ghost"], LONG)
    store.renew_slots("acct", [], LONG)
    assert store.slot_count("acct") == 2
    time.sleep(0.5)
    assert store.slot_count("acct") == 1  # t2 ran out, t1 was renewed
    assert store.take_slot("acct", "t3", 2, LONG) is True
    assert store.take_slot("acct", "t4", 2, LONG) is False
    store.renew_slots("acct", ["t2"], LONG)  # gone: not brought back
    assert store.slot_count("acct") == 2


# --- housekeeping ----------------------------------------------------------------


def test_purge_deletes_what_expired(store):
    store.create_job(job("j1"))
    store.create_job(job("j2"))
    store.update_job("j1", {"status": "completed"}, ttl=SHORT)
    store.set_key("k", "v", SHORT)
    store.acquire_lease("l", "w", SHORT)
    store.take_slot("g", "m", 1, SHORT)
    store.set_key("kept", "v", LONG)
    time.sleep(WAIT)
    assert store.purge() >= 1
    assert store.purge() == 0
    assert store.get_job("j2") is not None and store.get_key("kept") == "v"
    assert store.count_jobs() == {"queued": 1}
    if isinstance(store, SqliteStore):
        with closing(sqlite3.connect(store.path)) as db:
            rows = [db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                    for t in ("jobs", "keys", "leases", "slots")]  # fmt: skip
        assert rows == [1, 1, 0, 0]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_writes_purge_now_and_then(backend, tmp_path, request):
    if backend == "sqlite":
        store: Store = SqliteStore(str(tmp_path / "s.db"))
    else:
        store = RedisStore(request.getfixturevalue("redis_url"), prefix=_prefix())
    store.create_job(job("old"))
    store.update_job("old", {"status": "completed"}, ttl=SHORT)
    time.sleep(WAIT)
    store._next_purge = 0  # as if PURGE_EVERY had passed
    store.create_job(job("new"))
    assert store.purge() == 0  # the write did it already
    store.close()


def test_ping(store):
    store.ping()


def test_threads_share_one_store_safely(store):
    holders, overlaps, wins = [0], [0], []
    guard = threading.Lock()

    def work(name: str) -> None:
        if store.acquire_lease("race", name, LONG):
            wins.append(name)
        for _ in range(30):
            if store.take_slot("hot", name, 1, LONG):
                with guard:
                    holders[0] += 1
                    overlaps[0] += holders[0] > 1
                time.sleep(0.0005)
                with guard:
                    holders[0] -= 1
                store.free_slot("hot", name)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1 and overlaps[0] == 0
    assert store.slot_count("hot") == 0


# --- SQLite ----------------------------------------------------------------------


def test_sqlite_uses_wal_and_its_tables(tmp_path):
    store = SqliteStore(str(tmp_path / "s.db"))
    store.ping()
    with closing(sqlite3.connect(store.path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"jobs", "keys", "slots", "leases", "jobs_owner_created"} <= tables
    store.close()


def test_sqlite_unwritable_path_raises_store_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    store = SqliteStore(str(tmp_path / "file" / "s.db"))
    for call in (store.ping, lambda: store.get_job("j"), lambda: store.incr("n", 1)):
        with pytest.raises(StoreError, match="SQLite store"):
            call()


def test_sqlite_corrupt_file_raises_store_error(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database file at all, " * 200)
    with pytest.raises(StoreError, match="not a database"):
        SqliteStore(str(path)).get_key("k")


def test_sqlite_reopens_its_connection_after_fork(tmp_path):
    store = SqliteStore(str(tmp_path / "s.db"))
    parent_conn = store._connection()
    store.set_key("parent", "yes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork + threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 3
        try:
            fresh = store._connection() is not parent_conn
            store.set_key("child", "yes")
            code = 0 if fresh and store.get_key("parent") == "yes" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get_key("child") == "yes"
    assert store._connection() is parent_conn
    store.close()


# --- Redis -----------------------------------------------------------------------


def test_redis_unreachable_raises_store_error_without_the_password():
    url = f"redis://user:s3cr3t-pw@127.0.0.1:{free_port()}/0"
    store = RedisStore(url)
    started = time.monotonic()
    for call in (store.ping, lambda: store.get_job("j"), lambda: store.incr("n", 1)):
        with pytest.raises(StoreError) as caught:
            call()
        assert "s3cr3t" not in str(caught.value) and "127.0.0.1" in str(caught.value)
        assert caught.value.__cause__ is None
    assert time.monotonic() - started < 5
    store.close()


def test_redis_urls_are_described_without_secrets():
    assert describe_url("redis://u:pw@h:6380/2") == "redis://h:6380/2"
    assert describe_url("rediss://:pw@h") == "rediss://h"
    assert describe_url("unix:///run/r.sock?db=1&password=pw") == "unix:///run/r.sock"


def test_redis_keys_stay_under_the_prefix(redis_url):
    prefix = _prefix()
    store, other = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url)
    store.create_job(job("j1"))
    store.update_job("j1", {"status": "completed"}, ttl=LONG)
    store.set_key("k", "v")
    store.incr("n", LONG)
    store.acquire_lease("l", "w", LONG)
    store.take_slot("g", "m", 1, LONG)
    assert other.get_job("j1") is None and other.get_key("k") is None
    assert all(name.startswith("test-") for name in store._r.scan_iter())
    names = {name[len(prefix) :] for name in store._r.scan_iter(match=prefix + "*")}
    assert names == {
        "job:j1", "jobs:owner:alice", "jobs:status:completed",
        "jobs:statuses", "jobs:owners", "key:k", "key:n", "lease:l", "slots:g",
    }  # fmt: skip
    store.close()
    other.close()


def test_redis_expired_jobs_leave_the_indexes(redis_url):
    store = RedisStore(redis_url, prefix=_prefix())
    for i in range(3):
        store.create_job(job(f"j{i}", created_at=float(i), status="in_progress"))
        store.update_job(f"j{i}", {"status": "completed"}, ttl=SHORT)
    store.create_job(job("live", created_at=9.0))
    time.sleep(WAIT)
    owner_index = store._k("jobs", "owner", "alice")
    assert store._r.zcard(owner_index) == 4
    assert [j["id"] for j in store.list_jobs("alice", limit=5)[0]] == ["live"]
    assert store._r.zrange(owner_index, 0, -1) == ["live"]  # lazily cleaned
    store.create_job(job("x", owner="bob", status="in_progress"))
    store.update_job("x", {"status": "failed"}, ttl=SHORT)
    time.sleep(WAIT)
    assert store.purge() == 4
    assert store._r.zcard(store._k("jobs", "owner", "bob")) == 0
    assert store._r.hkeys(store._k("jobs", "owners")) == ["live"]
    store.close()


# --- open_store ------------------------------------------------------------------


def test_open_store_picks_the_backend(tmp_path, monkeypatch):
    data_dir = tmp_path / "new" / "data"
    default = open_store("", str(data_dir))
    assert isinstance(default, SqliteStore) and data_dir.is_dir()
    assert default.path == str(data_dir / "jimeng.sqlite3")
    assert open_store("sqlite", str(data_dir)).path == default.path
    assert open_store(f"sqlite://{tmp_path}/abs.db", "unused").path == str(
        tmp_path / "abs.db")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:rel.db", "unused")
    relative.set_key("k", "v")
    assert (tmp_path / "rel.db").exists()
    for url in ("redis://h:1/0", "rediss://u:p@h", "unix:///tmp/x.sock"):
        assert isinstance(open_store(url, "unused"), RedisStore)
    assert isinstance(open_store("memory://", "unused"), MemoryStore)
    for s in (default, relative):
        s.close()


@pytest.mark.parametrize(
    "url", ["postgres://user:hunter2@db/x", "hunter2", "sqlite://host/x.db", "sqlite:"]
)
def test_open_store_rejects_other_urls_without_echoing_them(url):
    with pytest.raises(ValueError, match="STORE_URL") as caught:
        open_store(url, "unused")
    assert "hunter2" not in str(caught.value) and "host" not in str(caught.value)


def test_open_store_with_an_unusable_data_dir_raises_store_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="DATA_DIR"):
        open_store("", str(tmp_path / "file" / "data"))


# --- two processes ---------------------------------------------------------------

LEASE_ROUNDS = 15
OPEN_ROUNDS = 8
HAMMER_SECONDS = 1.0


def _open_spec(spec: tuple[str, ...]) -> Store:
    if spec[0] == "sqlite":
        return SqliteStore(spec[1])
    return RedisStore(spec[1], prefix=spec[2])


def _contend(spec: tuple[str, ...], index: int, shared: tuple[Any, ...]) -> None:
    """One racing process (see ``_race``); a failure breaks the barrier so
    the other process stops at once instead of waiting for it."""
    store = _open_spec(spec)
    try:
        _race(store, index, *shared)
    except BaseException:
        shared[0].abort()
        raise
    finally:
        store.close()


def _race(store, index, barrier, holders, overlaps, wins, taken, calls) -> None:
    """Lease rounds started together; then, for a while, count and update a
    shared job (read-modify-writes) and take/hold/free one slot (cap 1),
    counting in shared memory how many hold it at once."""
    me = f"worker-{index}"
    for round_no in range(LEASE_ROUNDS):
        barrier.wait()
        if store.acquire_lease(f"race-{round_no}", me, LONG):
            with wins.get_lock():
                wins[round_no] += 1
    barrier.wait()
    deadline, rounds = time.monotonic() + HAMMER_SECONDS, 0
    while time.monotonic() < deadline:
        rounds += 1
        store.incr("hits", LONG)
        store.update_job("shared", {f"{me}-{rounds}": rounds})
        if store.take_slot("hot", me, 1, LONG):
            with holders.get_lock():
                holders.value += 1
                if holders.value > 1:
                    overlaps.value += 1
            time.sleep(0.001)
            with holders.get_lock():
                holders.value -= 1
            store.free_slot("hot", me)
            taken[index] += 1
        time.sleep(0.0005)
    calls[index] = rounds


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_processes_share_the_store_safely(backend, tmp_path, request):
    if backend == "sqlite":
        spec: tuple[str, ...] = ("sqlite", str(tmp_path / "shared.db"))
    else:
        spec = ("redis", request.getfixturevalue("redis_url"), _prefix())
    ctx = multiprocessing.get_context("spawn")
    procs_count = 2
    barrier = ctx.Barrier(procs_count, timeout=30)
    holders, overlaps = ctx.Value("i", 0), ctx.Value("i", 0)
    wins, taken = ctx.Array("i", LEASE_ROUNDS), ctx.Array("i", procs_count)
    calls = ctx.Array("i", procs_count)
    shared = (barrier, holders, overlaps, wins, taken, calls)
    with closing(_open_spec(spec)) as store:
        store.create_job(job("shared"))
    procs = [
        ctx.Process(target=_contend, args=(spec, i, shared)) for i in range(procs_count)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * procs_count
    assert list(wins) == [1] * LEASE_ROUNDS
    assert overlaps.value == 0
    assert min(taken) > 0 and sum(taken) > 20, list(taken)
    with closing(_open_spec(spec)) as store:
        assert store.slot_count("hot") == 0
        assert store.incr("hits", LONG) == sum(calls) + 1  # no increment lost
        fields = set(store.get_job("shared")) - set(job("shared"))
        assert len(fields) == sum(calls)  # no update lost


def _open_together(directory: str, barrier: Any, index: int) -> None:
    """Open a new file at the same moment as the others, several times."""
    try:
        for round_no in range(OPEN_ROUNDS):
            barrier.wait()
            with closing(SqliteStore(f"{directory}/{round_no}.db")) as store:
                store.set_key(f"k{index}", "v")
    except BaseException:
        barrier.abort()
        raise


def test_processes_create_one_sqlite_file_together(tmp_path):
    """Workers that start at once all create the file and switch it to WAL."""
    ctx, count = multiprocessing.get_context("spawn"), 4
    barrier = ctx.Barrier(count, timeout=30)
    args = [(str(tmp_path), barrier, i) for i in range(count)]
    procs = [ctx.Process(target=_open_together, args=a) for a in args]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * count
    for round_no in range(OPEN_ROUNDS):
        with closing(SqliteStore(str(tmp_path / f"{round_no}.db"))) as store:
            assert [store.get_key(f"k{i}") for i in range(count)] == ["v"] * count


WAITER = """
from gevent import monkey; monkey.patch_all()
import sqlite3, sys, time, gevent
from jimeng_api.store.sqlite import SqliteStore
path = sys.argv[1]
store = SqliteStore(path)
store.incr("warm", 60)
holder = sqlite3.connect(path, isolation_level=None)
holder.execute("BEGIN IMMEDIATE")  # another process's writer, as far as SQLite knows
ticks = []
def tick():
    for _ in range(30):
        gevent.sleep(0.01)
        ticks.append(time.monotonic())
def write():
    store.incr("hits", 60)
    ticks.append("written")
def release():
    gevent.sleep(0.4)
    holder.execute("COMMIT")
gevent.joinall([gevent.spawn(tick), gevent.spawn(write), gevent.spawn(release)])
print(sum(1 for t in ticks[: ticks.index("written")] if t != "written"))
"""


def test_a_sqlite_writer_waiting_for_the_lock_lets_other_greenlets_run(tmp_path):
    """SQLite's own busy handler sleeps in C: under gevent the whole worker
    stopped while another process held the write lock."""
    result = subprocess.run(
        [sys.executable, "-c", WAITER, str(tmp_path / "wait.db")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 20  # ticks while the write waited 0.4 s
