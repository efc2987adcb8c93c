"""Jobs: the durable record of every generation, and who may see it.

A job is created before anything is sent to Jimeng and lives in the store, so a
dropped connection, a dead worker or a restart loses nothing: any worker can
finish it, and the caller collects it by task id or by ``Idempotency-Key``.

Statuses (public): ``queued`` → ``in_progress`` → ``completed`` | ``failed`` |
``cancelled``. Phases (internal, who acts next): ``new`` (not sent),
``submitting`` (``submit_id`` recorded, the call under way), ``waiting`` (not
accepted yet: the account is at its parallel limit), ``running`` (Jimeng has
the record), ``done``.

"Can this request be replayed without paying?" is answered here: a repeat with
the same ``Idempotency-Key`` is the same job.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import metrics
from .errors import (
    APIError,
    NotFoundError,
    UnprocessableEntityError,
    UpstreamTimeoutError,
)
from .store import FINISHED, Store

log = logging.getLogger(__name__)

WAIT_POLL_INTERVAL = 0.5  # a waiter rereads the store at least this often
#: ...unless this process polls the job: every change of it then comes through
#: this process's Jobs and wakes the waiter; the reread is a safety net (a
#: DELETE on another worker, a poll lease lost to another worker)
LOCAL_REREAD_INTERVAL = 5.0
TICK_SLACK = 0.005  # a timer may fire this much early: the tick has come


@dataclass(frozen=True)
class Caller:
    """Who asks: the owner hash (never a secret) and the tokens they may spend
    (None in pooled mode: the pool's accounts are used)."""

    owner: str
    tokens: list[str] | None


def new_job_id() -> str:
    return "task_" + uuid.uuid4().hex


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Subscription:
    """One waiter's view of a job's changes in this process."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._job: dict[str, Any] | None = None

    def wait(self, timeout: float) -> bool:
        """Whether the job changed (since the last call) within *timeout*."""
        if not self._event.wait(max(0.0, timeout)):
            return False
        self._event.clear()
        return True

    def take(self) -> dict[str, Any] | None:
        """The job as the last change left it (None: reread the store)."""
        job, self._job = self._job, None
        return job

    def _changed(self, job: dict[str, Any] | None) -> None:
        self._job = dict(job) if job is not None else None
        self._event.set()


class Notifier:
    """Wakes the waiters of this process when a job changes, handing them the
    job as the change left it (changes made elsewhere are found by rereading
    the store)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()

    def subscribe(self, job_id: str) -> Subscription:
        subscription = Subscription()
        with self._lock:
            self._subscribers.setdefault(job_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, job_id: str, subscription: Subscription) -> None:
        with self._lock:
            waiting = self._subscribers.get(job_id)
            if waiting is not None:
                waiting.discard(subscription)
                if not waiting:
                    del self._subscribers[job_id]

    def notify(self, job_id: str, job: dict[str, Any] | None = None) -> None:
        with self._lock:
            waiting = list(self._subscribers.get(job_id, ()))
        for subscription in waiting:
            subscription._changed(job)


class Jobs:
    """Create, read, wait for and finish jobs."""

    def __init__(self, store: Store, config: Any) -> None:
        self.store = store
        self.ttl = config["JOB_TTL"]
        self.deadline = config["GENERATION_TIMEOUT"]
        self.notifier = Notifier()
        self.on_finish: list[Callable[[dict[str, Any]], None]] = []
        #: whether this process polls a job (set by the poller)
        self.polled_here: Callable[[str], bool] = lambda job_id: False

    # --- create -----------------------------------------------------------

    def create(
        self,
        caller: Caller,
        kind: str,
        spec: dict[str, Any],
        *,
        sealed: str | None,
        idempotency: tuple[str, str] | None = None,
        callback_url: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Record a new job; return it and whether it is new.

        *idempotency* is ``(key, body hash)``: a repeat of the key returns the
        job it named (same body) or a 422 (another body).
        """
        now = time.time()
        job = {
            "id": new_job_id(),
            "owner": caller.owner,
            "kind": kind,
            "status": "queued",
            "phase": "new",
            "spec": spec,
            "candidates": sealed,
            "account": None,
            "token": None,
            "submit_id": None,
            "history_id": None,
            "progress": {"images": 0, "expected": spec.get("n")},
            "urls": [],
            "result": None,
            "error": None,
            "callback_url": callback_url,
            "created_at": now,
            "updated_at": now,
            "accepted_at": None,
            "completed_at": None,
            "deadline": now + self.deadline,
        }
        self.store.create_job(job)
        if idempotency is None:
            metrics.job_created(kind)
            return job, True
        try:
            existing = self._claim_key(caller, job, *idempotency)
        except APIError:
            self.store.delete_job(job["id"])  # refused: nothing may submit it
            raise
        if existing is None:
            metrics.job_created(kind)
            return job, True
        self.store.delete_job(job["id"])
        return existing, False

    def _claim_key(
        self, caller: Caller, job: dict[str, Any], key: str, digest: str
    ) -> dict[str, Any] | None:
        """Bind *key* to *job*; return the job it named already, if any."""
        name = "idem:" + hashlib.sha256(f"{caller.owner}\0{key}".encode()).hexdigest()
        value = f"{job['id']}|{digest}"
        for _ in range(3):
            if self.store.set_key(name, value, self.ttl, only_new=True):
                return None
            held = self.store.get_key(name) or ""
            job_id, _, held_digest = held.partition("|")
            existing = self.store.get_job(job_id) if job_id else None
            if existing is None:  # the job it named is gone: the key is free
                self.store.delete_key(name, value=held)
                continue
            if held_digest != digest:
                raise UnprocessableEntityError(
                    "This Idempotency-Key was used with a different request body.",
                    code="idempotency_key_reused",
                    param="Idempotency-Key",
                )
            return existing
        return None

    # --- read ---------------------------------------------------------------

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self.store.get_job(job_id)

    def get_for(self, caller: Caller, job_id: str) -> dict[str, Any]:
        """Return the caller's job; anyone else's is as unknown as a missing one."""
        job = self.store.get_job(job_id) if job_id.startswith("task_") else None
        if job is None or job.get("owner") != caller.owner:
            raise NotFoundError(f"No task with id '{job_id[:80]}'.", code="not_found")
        return job

    def list_for(
        self, caller: Caller, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        return self.store.list_jobs(caller.owner, limit=limit, after=after)

    def delete_for(self, caller: Caller, job_id: str) -> dict[str, Any]:
        """Stop polling and forget the job (Jimeng is not asked to cancel)."""
        job = self.get_for(caller, job_id)
        if job["status"] not in FINISHED:
            job = self.finish(job["id"], status="cancelled", phase="done") or job
        self.store.delete_job(job_id)
        return job

    # --- change -------------------------------------------------------------

    def update(self, job_id: str, **changes: Any) -> dict[str, Any] | None:
        changes["updated_at"] = time.time()
        job = self.store.update_job(job_id, changes)
        self.notifier.notify(job_id, job)
        return job

    def finish(self, job_id: str, **changes: Any) -> dict[str, Any] | None:
        """Record the end of a job (kept for ``JOB_TTL``); wake its waiters and
        run the finish hooks (slot release, webhook)."""
        now = time.time()
        changes.setdefault("phase", "done")
        changes.update(updated_at=now, completed_at=now, candidates=None, token=None)
        job = self.store.update_job(job_id, changes, ttl=self.ttl)
        self.notifier.notify(job_id, job)
        if job is not None:
            metrics.job_finished(job["kind"], job["status"])
            metrics.generation_ended(job)
            for hook in self.on_finish:
                try:
                    hook(job)
                except Exception:  # a hook must not undo a finished job
                    log.exception("finish hook failed for %s", job_id)
        return job

    def fail(self, job_id: str, error: APIError) -> dict[str, Any] | None:
        return self.finish(
            job_id,
            status="failed",
            error={
                **error.to_dict()["error"],
                "status": error.status_code,
                "retryable": error.retryable,
                "headers": error.headers,
            },
        )

    # --- wait ---------------------------------------------------------------

    def wait(
        self, job: dict[str, Any], timeout: float, tick: float | None = None
    ) -> Iterator[dict[str, Any] | None]:
        """Yield the job each time it changes, until it has finished (the last
        one yielded); None every *tick* seconds while nothing changes.

        Raises a 504 naming the task when *timeout* passes first: the job goes
        on and stays collectable.
        """
        end = time.monotonic() + timeout
        seen = job.get("updated_at")
        subscription = self.notifier.subscribe(job["id"])
        try:
            yield job
            read_at = time.monotonic()
            next_tick = read_at + (tick or 0)
            while job["status"] not in FINISHED:
                now = time.monotonic()
                if now >= end:
                    raise still_running(job, timeout)
                # reread the store even when nothing woke us: another worker
                # may poll this job, and cannot notify us
                reread = (
                    LOCAL_REREAD_INTERVAL
                    if self.polled_here(job["id"])
                    else WAIT_POLL_INTERVAL
                )
                due = read_at + reread
                wake = min(end, due, next_tick) if tick else min(end, due)
                changed = subscription.wait(wake - now)
                latest = subscription.take() if changed else None
                if latest is None and (changed or time.monotonic() >= due):
                    latest, read_at = self.store.get_job(job["id"]), time.monotonic()
                    if latest is None:
                        raise NotFoundError("The task was deleted.", code="not_found")
                if latest is not None and latest.get("updated_at") != seen:
                    job, seen = latest, latest.get("updated_at")
                    yield job
                elif tick and time.monotonic() >= next_tick - TICK_SLACK:
                    # a steady tick, whatever changed in between: the writer
                    # decides from its own last write whether a keep-alive is due
                    yield None
                if tick and time.monotonic() >= next_tick - TICK_SLACK:
                    next_tick = max(next_tick + tick, time.monotonic() + TICK_SLACK)
        finally:
            self.notifier.unsubscribe(job["id"], subscription)


def still_running(job: dict[str, Any], waited: float) -> APIError:
    return UpstreamTimeoutError(
        f"The generation did not finish within {waited:g} s; it goes on as task "
        f"{job['id']}: collect it with GET /v1/tasks/{job['id']} (or repeat the "
        "request with the same Idempotency-Key). Nothing more is charged.",
        code="still_running",
        retryable=False,
        headers={"X-Task-Id": job["id"]},
    )
