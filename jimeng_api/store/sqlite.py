"""The SQLite backend: one file shared by every worker process of one host.

One connection per process, guarded by a lock (gevent patches ``threading``, so
the lock also serialises greenlets); the connection is reopened when the process
id changes, since gunicorn forks its workers. WAL mode lets readers run beside
the one writer; every read-modify-write runs in ``BEGIN IMMEDIATE``, which takes
the write lock before reading. Expiry is an ``expires_at`` column (Unix seconds,
NULL: never) that every read filters on; ``purge()`` deletes what has run out,
and writes call it every ``PURGE_EVERY`` seconds.

A writer waits for another process's write lock without blocking its worker:
SQLite's own busy handler would sleep inside C, stopping every greenlet of the
process, so ``busy_timeout`` is 0 and ``BEGIN IMMEDIATE`` is retried with
``time.sleep`` (cooperative under gevent; ``sqlite_locks.py``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import check_new_job, dump_job, load_job, merge_job, ttl_seconds
from .base import UNFINISHED, Store, StoreError
from .sqlite_locks import locked, use_wal

PURGE_EVERY = 60.0  # seconds between opportunistic purges (per process)
LIVE = "(expires_at IS NULL OR expires_at > ?)"

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL,
    status TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_expires ON jobs (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, value TEXT NOT NULL,
    expires_at REAL);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL,
    expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS slots (grp TEXT NOT NULL, member TEXT NOT NULL,
    expires_at REAL NOT NULL, PRIMARY KEY (grp, member));
"""
TABLES = ("jobs", "keys", "leases", "slots")


class SqliteStore(Store):
    """``Store`` on one SQLite file (the default backend)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._inherited: list[sqlite3.Connection] = []
        self._next_purge = _now() + PURGE_EVERY
        os.register_at_fork(after_in_child=_after_fork_hook(self))

    # --- connection and transactions -------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """Return this process's connection, opening it on first use."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:
            # forked: never use or close the parent's handle in the child
            self._inherited.append(self._conn)
            self._conn = None
        self._pid = os.getpid()
        self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 0")  # waits: locked()
            use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            locked(lambda: conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
        except BaseException:
            conn.close()
            raise
        return conn

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (the parent's may be held by a thread
        that does not exist here); the connection is replaced on next use."""
        self._lock = threading.Lock()

    @contextmanager
    def _tx(self, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """Run the body in one transaction; map SQLite failures to StoreError."""
        with self._lock:
            try:
                conn = self._connection()
                locked(lambda: conn.execute(begin))
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path!r}: {exc}") from exc

    def _write(self) -> Any:
        """A write transaction, after an opportunistic purge when one is due."""
        if _now() >= self._next_purge:
            self.purge()
        return self._tx()

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        """Return the first row of a read query, or None (in WAL mode a reader
        meets a lock only while the file is being recovered: then it waits)."""

        def read() -> Any:
            with self._tx("BEGIN") as db:
                return db.execute(sql, args).fetchone()

        return locked(read)

    def _run(self, sql: str, args: tuple[Any, ...]) -> int:
        """Run one write statement; return how many rows it changed."""
        with self._write() as db:
            return db.execute(sql, args).rowcount

    # --- jobs ------------------------------------------------------------------

    def create_job(self, job: dict[str, Any]) -> None:
        data = check_new_job(job)
        with self._write() as db:
            db.execute(
                f"DELETE FROM jobs WHERE id = ? AND NOT {LIVE}", (job["id"], _now())
            )
            try:
                db.execute(
                    "INSERT INTO jobs (id, owner, status, created_at, expires_at, data)"
                    " VALUES (?, ?, ?, ?, NULL, ?)",
                    (job["id"], job["owner"], job["status"], job["created_at"], data),
                )
            except sqlite3.IntegrityError:
                raise KeyError(job["id"]) from None

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        row = self._one(
            f"SELECT data FROM jobs WHERE id = ? AND {LIVE}", (job_id, _now())
        )
        return load_job(row[0], job_id) if row else None

    def update_job(
        self, job_id: str, changes: dict[str, Any], *, ttl: float | None = None
    ) -> dict[str, Any] | None:
        now = _now()
        expires = None if ttl is None else now + ttl_seconds(ttl)
        with self._write() as db:
            row = db.execute(
                f"SELECT data FROM jobs WHERE id = ? AND {LIVE}", (job_id, now)
            ).fetchone()
            job = load_job(row[0], job_id) if row else None
            if job is None:
                return None
            job = merge_job(job, changes)
            db.execute(
                "UPDATE jobs SET status = ?, data = ?,"
                " expires_at = COALESCE(?, expires_at) WHERE id = ?",
                (job["status"], dump_job(job), expires, job_id),
            )
        return job

    def delete_job(self, job_id: str) -> bool:
        sql = f"DELETE FROM jobs WHERE id = ? AND {LIVE}"
        return self._run(sql, (job_id, _now())) > 0

    def list_jobs(
        self, owner: str, *, limit: int, after: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        now, limit = _now(), max(limit, 0)
        sql = f"SELECT id, data FROM jobs WHERE owner = ? AND {LIVE}"
        args: tuple[Any, ...] = (owner, now)
        with self._tx("BEGIN") as db:
            if after is not None:
                cursor = f"SELECT created_at FROM jobs WHERE owner = ? AND {LIVE}"
                row = db.execute(cursor + " AND id = ?", args + (after,)).fetchone()
                if row is None:
                    return [], False
                sql += " AND (created_at, id) < (?, ?)"
                args += (row[0], after)
            rows = db.execute(sql + " ORDER BY created_at DESC, id DESC", args)
            jobs = _first_readable(rows, limit + 1)
        return jobs[:limit], len(jobs) > limit

    def unfinished_jobs(self, limit: int = 10000) -> list[str]:
        marks = ", ".join("?" * len(UNFINISHED))
        with self._tx("BEGIN") as db:
            rows = db.execute(
                f"SELECT id FROM jobs WHERE status IN ({marks}) AND {LIVE}"
                " ORDER BY created_at, id LIMIT ?",
                (*sorted(UNFINISHED), _now(), limit),
            ).fetchall()
        return [row[0] for row in rows]

    def count_jobs(self) -> dict[str, int]:
        sql = f"SELECT status, COUNT(*) FROM jobs WHERE {LIVE} GROUP BY status"
        with self._tx("BEGIN") as db:
            return dict(db.execute(sql, (_now(),)).fetchall())

    # --- keys with TTLs ----------------------------------------------------------

    def set_key(
        self, key: str, value: str, ttl: float | None = None, *, only_new: bool = False
    ) -> bool:
        now = _now()
        sql = (
            "INSERT INTO keys (key, value, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " expires_at = excluded.expires_at"
        )
        args: tuple[Any, ...] = (
            key,
            value,
            None if ttl is None else now + ttl_seconds(ttl),
        )
        if only_new:  # replace only a row that has expired
            sql += " WHERE keys.expires_at IS NOT NULL AND keys.expires_at <= ?"
            args += (now,)
        return self._run(sql, args) > 0

    def get_key(self, key: str) -> str | None:
        row = self._one(
            f"SELECT value FROM keys WHERE key = ? AND {LIVE}", (key, _now())
        )
        return row[0] if row else None

    def delete_key(self, key: str, *, value: str | None = None) -> bool:
        sql, args = f"DELETE FROM keys WHERE key = ? AND {LIVE}", (key, _now())
        if value is not None:
            sql, args = sql + " AND value = ?", args + (value,)
        return self._run(sql, args) > 0

    def incr(self, key: str, ttl: float) -> int:
        now = _now()
        with self._write() as db:
            row = db.execute(
                f"SELECT value FROM keys WHERE key = ? AND {LIVE}", (key, now)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT OR REPLACE INTO keys (key, value, expires_at)"
                    " VALUES (?, '1', ?)",
                    (key, now + ttl_seconds(ttl)),
                )
                return 1
            count = _as_int(row[0], key) + 1
            db.execute("UPDATE keys SET value = ? WHERE key = ?", (str(count), key))
            return count

    # --- leases ------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        now = _now()
        sql = (
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at"
            " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?"
        )
        return self._run(sql, (name, holder, now + ttl_seconds(ttl), now)) > 0

    def renew_leases(self, names: list[str], holder: str, ttl: float) -> list[str]:
        now = _now()
        expires = now + ttl_seconds(ttl)
        sql = (
            "UPDATE leases SET expires_at = ?"
            " WHERE name = ? AND holder = ? AND expires_at > ?"
        )
        with self._write() as db:
            return [
                name
                for name in names
                if db.execute(sql, (expires, name, holder, now)).rowcount
            ]

    def release_lease(self, name: str, holder: str) -> None:
        self._run("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def lease_holder(self, name: str) -> str | None:
        sql = "SELECT holder FROM leases WHERE name = ? AND expires_at > ?"
        row = self._one(sql, (name, _now()))
        return row[0] if row else None

    # --- counted slots -----------------------------------------------------------

    def take_slot(self, group: str, member: str, cap: int, ttl: float) -> bool:
        now = _now()
        expires = now + ttl_seconds(ttl)
        with self._write() as db:
            db.execute(
                "DELETE FROM slots WHERE grp = ? AND expires_at <= ?", (group, now)
            )
            renewed = db.execute(
                "UPDATE slots SET expires_at = ? WHERE grp = ? AND member = ?",
                (expires, group, member),
            ).rowcount
            if renewed:
                return True
            sql = "SELECT COUNT(*) FROM slots WHERE grp = ?"
            if db.execute(sql, (group,)).fetchone()[0] >= cap:
                return False
            db.execute(
                "INSERT INTO slots (grp, member, expires_at) VALUES (?, ?, ?)",
                (group, member, expires),
            )
            return True

    def renew_slots(self, group: str, members: list[str], ttl: float) -> None:
        now = _now()
        sql = (
            "UPDATE slots SET expires_at = ?"
            " WHERE grp = ? AND member = ? AND expires_at > ?"
        )
        with self._write() as db:
            expires = now + ttl_seconds(ttl)
            db.executemany(sql, [(expires, group, m, now) for m in members])

    def free_slot(self, group: str, member: str) -> None:
        self._run("DELETE FROM slots WHERE grp = ? AND member = ?", (group, member))

    def slot_count(self, group: str) -> int:
        sql = "SELECT COUNT(*) FROM slots WHERE grp = ? AND expires_at > ?"
        return self._one(sql, (group, _now()))[0]

    # --- housekeeping ------------------------------------------------------------

    def ping(self) -> None:
        self._one("SELECT 1 FROM keys LIMIT 1", ())

    def purge(self) -> int:
        now = _now()
        self._next_purge = now + PURGE_EVERY
        with self._tx() as db:
            sql = "DELETE FROM {} WHERE expires_at <= ?"
            return sum(db.execute(sql.format(t), (now,)).rowcount for t in TABLES)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def _after_fork_hook(store: SqliteStore) -> Any:
    """Return an at-fork callback that holds *store* only weakly."""
    ref = weakref.ref(store)

    def hook() -> None:
        alive = ref()
        if alive is not None:
            alive._after_fork()

    return hook


def _first_readable(rows: Any, count: int) -> list[dict[str, Any]]:
    """Return the first *count* readable jobs of ``(id, data)`` rows."""
    jobs = []
    for job_id, data in rows:
        job = load_job(data, job_id)
        if job is not None:
            jobs.append(job)
            if len(jobs) == count:
                break
    return jobs


def _now() -> float:
    return time.time()


def _as_int(value: str, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"key {key!r} does not hold a counter") from None
