"""The in-memory backend, for unit tests only.

Dicts behind one lock, with the same semantics as the SQLite and Redis backends:
jobs are kept as JSON text (so what comes back is a copy, and a corrupt record
can be simulated), and everything with a TTL holds its expiry time (the
monotonic clock) and is invisible once that has passed. Nothing is shared
between processes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from . import check_new_job, dump_job, load_job, merge_job, ttl_seconds
from .base import UNFINISHED, Store


@dataclass
class _Job:
    owner: str
    status: str
    created_at: float
    data: str
    expires_at: float | None = None


def _live(expires_at: float | None, now: float) -> bool:
    return expires_at is None or expires_at > now


class MemoryStore(Store):
    """``Store`` in this process's memory (tests only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._keys: dict[str, tuple[str, float | None]] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._slots: dict[str, dict[str, float]] = {}

    # --- jobs ------------------------------------------------------------------

    def _live_job(self, job_id: str, now: float) -> _Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and _live(job.expires_at, now) else None

    def create_job(self, job: dict[str, Any]) -> None:
        data = check_new_job(job)
        with self._lock:
            if self._live_job(job["id"], time.monotonic()):
                raise KeyError(job["id"])
            self._jobs[job["id"]] = _Job(
                job["owner"], job["status"], job["created_at"], data
            )

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._live_job(job_id, time.monotonic())
            return load_job(job.data, job_id) if job else None

    def update_job(
        self, job_id: str, changes: dict[str, Any], *, ttl: float | None = None
    ) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            row = self._live_job(job_id, now)
            job = load_job(row.data, job_id) if row else None
            if row is None or job is None:
                return None
            job = merge_job(job, changes)
            row.data, row.status = dump_job(job), job["status"]
            if ttl is not None:
                row.expires_at = now + ttl_seconds(ttl)
            return job

    def delete_job(self, job_id: str) -> bool:
        with self._lock:
            found = self._live_job(job_id, time.monotonic()) is not None
            self._jobs.pop(job_id, None)
            return found

    def _live_jobs(self) -> list[tuple[str, _Job]]:
        now = time.monotonic()
        return [(i, j) for i, j in self._jobs.items() if _live(j.expires_at, now)]

    def list_jobs(
        self, owner: str, *, limit: int, after: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        limit = max(limit, 0)
        with self._lock:
            mine = [
                (j.created_at, i, j) for i, j in self._live_jobs() if j.owner == owner
            ]
            mine.sort(key=lambda row: row[:2], reverse=True)
            if after is not None:
                ids = [row[1] for row in mine]
                if after not in ids:
                    return [], False
                mine = mine[ids.index(after) + 1 :]
            jobs = []
            for _, job_id, row in mine:
                job = load_job(row.data, job_id)
                if job is not None:
                    jobs.append(job)
                    if len(jobs) > limit:
                        break
        return jobs[:limit], len(jobs) > limit

    def unfinished_jobs(self, limit: int = 10000) -> list[str]:
        with self._lock:
            rows = [
                (j.created_at, i)
                for i, j in self._live_jobs()
                if j.status in UNFINISHED
            ]
        return [job_id for _, job_id in sorted(rows)[:limit]]

    def count_jobs(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            for _, job in self._live_jobs():
                counts[job.status] = counts.get(job.status, 0) + 1
        return counts

    # --- keys with TTLs ----------------------------------------------------------

    def _live_key(self, key: str, now: float) -> str | None:
        value, expires_at = self._keys.get(key, (None, None))
        return value if value is not None and _live(expires_at, now) else None

    def set_key(
        self, key: str, value: str, ttl: float | None = None, *, only_new: bool = False
    ) -> bool:
        now = time.monotonic()
        with self._lock:
            if only_new and self._live_key(key, now) is not None:
                return False
            self._keys[key] = (value, None if ttl is None else now + ttl_seconds(ttl))
            return True

    def get_key(self, key: str) -> str | None:
        with self._lock:
            return self._live_key(key, time.monotonic())

    def delete_key(self, key: str, *, value: str | None = None) -> bool:
        with self._lock:
            current = self._live_key(key, time.monotonic())
            if current is None or (value is not None and current != value):
                return False
            del self._keys[key]
            return True

    def incr(self, key: str, ttl: float) -> int:
        now = time.monotonic()
        with self._lock:
            current = self._live_key(key, now)
            if current is None:
                self._keys[key] = ("1", now + ttl_seconds(ttl))
                return 1
            try:
                count = int(current) + 1
            except ValueError:
                raise ValueError(f"key {key!r} does not hold a counter") from None
            self._keys[key] = (str(count), self._keys[key][1])
            return count

    # --- leases ------------------------------------------------------------------

    def _holder(self, name: str, now: float) -> str | None:
        holder, expires_at = self._leases.get(name, (None, 0.0))
        return holder if holder is not None and expires_at > now else None

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._holder(name, now) not in (None, holder):
                return False
            self._leases[name] = (holder, now + ttl_seconds(ttl))
            return True

    def renew_leases(self, names: list[str], holder: str, ttl: float) -> list[str]:
        now = time.monotonic()
        with self._lock:
            kept = [name for name in names if self._holder(name, now) == holder]
            for name in kept:
                self._leases[name] = (holder, now + ttl_seconds(ttl))
        return kept

    def release_lease(self, name: str, holder: str) -> None:
        with self._lock:
            if self._leases.get(name, (None,))[0] == holder:
                del self._leases[name]

    def lease_holder(self, name: str) -> str | None:
        with self._lock:
            return self._holder(name, time.monotonic())

    # --- counted slots -----------------------------------------------------------

    def _members(self, group: str, now: float) -> dict[str, float]:
        """Return the live members of *group* (dropping expired ones)."""
        members = {m: exp for m, exp in self._slots.get(group, {}).items() if exp > now}
        self._slots[group] = members
        return members

    def take_slot(self, group: str, member: str, cap: int, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            members = self._members(group, now)
            if member not in members and len(members) >= cap:
                return False
            members[member] = now + ttl_seconds(ttl)
            return True

    def renew_slots(self, group: str, members: list[str], ttl: float) -> None:
        now = time.monotonic()
        with self._lock:
            live = self._members(group, now)
            for member in members:
                if member in live:
                    live[member] = now + ttl_seconds(ttl)

    def free_slot(self, group: str, member: str) -> None:
        with self._lock:
            self._slots.get(group, {}).pop(member, None)

    def slot_count(self, group: str) -> int:
        with self._lock:
            return len(self._members(group, time.monotonic()))

    # --- housekeeping ------------------------------------------------------------

    def ping(self) -> None:
        """Always usable."""

    def purge(self) -> int:
        now = time.monotonic()
        with self._lock:
            before = self._size()
            self._jobs = {
                i: j for i, j in self._jobs.items() if _live(j.expires_at, now)
            }
            self._keys = {k: v for k, v in self._keys.items() if _live(v[1], now)}
            self._leases = {n: v for n, v in self._leases.items() if v[1] > now}
            for group in list(self._slots):
                if not self._members(group, now):
                    del self._slots[group]
            return before - self._size()

    def _size(self) -> int:
        slots = sum(len(members) for members in self._slots.values())
        return len(self._jobs) + len(self._keys) + len(self._leases) + slots
