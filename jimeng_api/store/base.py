"""The store's one interface: what must outlive a request or be shared by workers.

Three backends implement it: ``sqlite`` (the default, one file in ``DATA_DIR``,
shared by every worker of one host), ``redis`` (several hosts) and ``memory``
(unit tests only). Each uses its own primitives: SQLite transactions, Redis
``SET NX PX``, Lua and TTLs. Nothing above this package knows which one runs.

Records are JSON objects (``dict``); keys and values are strings. Times are Unix
seconds (``time.time()``), TTLs are seconds (floats allowed); a TTL <= 0 means
"expire at once" (backends round TTLs up to at least one millisecond).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

#: job statuses that still need work (the "unfinished" index holds these)
UNFINISHED = frozenset({"queued", "in_progress"})
#: job statuses after which a record only waits for its TTL to run out
FINISHED = frozenset({"completed", "failed", "cancelled"})


class StoreError(Exception):
    """The store could not be reached or answered wrongly (the API says 503)."""


class Store(ABC):
    """Jobs, keys with TTLs, leases and counted slots."""

    # --- jobs ---------------------------------------------------------------
    @abstractmethod
    def create_job(self, job: dict[str, Any]) -> None:
        """Insert *job* (it has ``id``, ``owner``, ``status``, ``created_at``).

        Raises ``KeyError`` if a live job with that id exists already (the id of
        an expired job may be used again), ``ValueError`` if a field is missing.
        """

    @abstractmethod
    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """Return the job, or None if unknown, expired or unreadable (corrupt
        rows are logged and treated as absent, never raised)."""

    @abstractmethod
    def update_job(
        self, job_id: str, changes: dict[str, Any], *, ttl: float | None = None
    ) -> dict[str, Any] | None:
        """Merge *changes* into the job's top-level fields atomically and return
        the new record (None if the job is gone or unreadable). The merge is
        shallow (a nested dict is replaced) and ``None`` is stored as ``null``.
        ``id``, ``owner`` and ``created_at`` are fixed: changing them raises
        ``ValueError``. *ttl*, if given, makes the job expire that many seconds
        from now (set when it finishes); without it an earlier TTL still holds.
        A change of ``status`` keeps the unfinished index right."""

    @abstractmethod
    def delete_job(self, job_id: str) -> bool:
        """Forget the job; return whether it existed."""

    @abstractmethod
    def list_jobs(
        self, owner: str, *, limit: int, after: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Return *owner*'s jobs newest first (``created_at``, then id), starting
        after the job with id *after* (exclusive), at most *limit*; and whether
        more follow. An *after* that is not a live job of *owner* gives
        ``([], False)``; unreadable records are skipped."""

    @abstractmethod
    def unfinished_jobs(self, limit: int = 10000) -> list[str]:
        """Return ids of live jobs whose status is in ``UNFINISHED`` (oldest
        first, at most *limit*). Ids come from the index: the record of one may
        be unreadable (``get_job`` then says None)."""

    @abstractmethod
    def count_jobs(self) -> dict[str, int]:
        """Return the number of live (unexpired) jobs by status (statuses with
        no job are absent)."""

    # --- keys with TTLs -----------------------------------------------------
    @abstractmethod
    def set_key(
        self, key: str, value: str, ttl: float | None = None, *, only_new: bool = False
    ) -> bool:
        """Set *key* (``SET key value [PX ttl] [NX]``); return whether it was set
        (False only when *only_new* and the key exists)."""

    @abstractmethod
    def get_key(self, key: str) -> str | None:
        """Return the key's value, or None if absent or expired."""

    @abstractmethod
    def delete_key(self, key: str, *, value: str | None = None) -> bool:
        """Delete *key* (only if it holds *value*, when given: compare-and-delete);
        return whether a live key was deleted."""

    @abstractmethod
    def incr(self, key: str, ttl: float) -> int:
        """Add one to the counter *key* and return the new value; a new counter
        expires *ttl* seconds after its first increment (fixed windows). Raises
        ``ValueError`` if *key* holds something else than an integer."""

    # --- leases -------------------------------------------------------------
    @abstractmethod
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease *name* for *holder* for *ttl* seconds if it is free or
        already *holder*'s (then it is renewed); return whether *holder* has it."""

    @abstractmethod
    def renew_leases(self, names: list[str], holder: str, ttl: float) -> list[str]:
        """Extend every lease in *names* that *holder* still has; return those
        (a lease lost to expiry and taken by another is not returned)."""

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> None:
        """Give up the lease if *holder* has it (no-op otherwise)."""

    @abstractmethod
    def lease_holder(self, name: str) -> str | None:
        """Return who holds the lease now, or None."""

    # --- counted slots (per-account concurrency) ------------------------------
    @abstractmethod
    def take_slot(self, group: str, member: str, cap: int, ttl: float) -> bool:
        """Add *member* to *group* if the group has fewer than *cap* live
        members (or *member* is in it already: then it is renewed); members
        expire *ttl* seconds after they were taken or last renewed. Atomic.
        Return whether *member* holds a slot now (a new member never does when
        *cap* <= 0)."""

    @abstractmethod
    def renew_slots(self, group: str, members: list[str], ttl: float) -> None:
        """Extend the members of *group* in *members* that are still there."""

    @abstractmethod
    def free_slot(self, group: str, member: str) -> None:
        """Remove *member* from *group* (no-op if absent)."""

    @abstractmethod
    def slot_count(self, group: str) -> int:
        """Return how many live members *group* has."""

    # --- housekeeping -------------------------------------------------------
    @abstractmethod
    def ping(self) -> None:
        """Raise ``StoreError`` if the store cannot be used right now."""

    @abstractmethod
    def purge(self) -> int:
        """Delete what has expired (where the backend expires by itself, only
        the index entries left behind); return how many entries (Redis: jobs)
        went."""

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections or file handles."""
