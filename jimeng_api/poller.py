"""The background loop of every worker: polls running jobs, submits waiting ones
and adopts the jobs of workers that died.

Ownership is by lease, in the store:
- ``poll:<account>``: the one worker that polls an account's running jobs, all
  in one ``get_history_by_ids`` call per tick, at most once per
  ``POLL_MIN_INTERVAL``; renewed while it has jobs there;
- ``job:<id>``: whoever submits (or recovers) a job right now.
A dead worker's leases run out after ``LEASE_TTL`` and another worker (or the
next start) picks its jobs up from the store's unfinished index.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from . import metrics, schedule
from .errors import APIError, GenerationFailedError, UpstreamError, UpstreamTimeoutError
from .jobs import Jobs
from .results import Renderer
from .sealing import Sealer
from .store import Store, StoreError
from .submission import Submitter
from .tracking import Tracked, read
from .upstream import JimengClient, Record

log = logging.getLogger(__name__)

TICK = 0.2  # seconds between two passes of the loop
SCAN_INTERVAL = 1.0  # seconds between two looks at the unfinished index


class Poller:
    """One per worker process."""

    def __init__(
        self,
        store: Store,
        jobs: Jobs,
        submitter: Submitter,
        client: JimengClient,
        renderer: Renderer,
        sealer: Sealer,
        config: Any,
    ) -> None:
        self.store, self.jobs, self.submitter = store, jobs, submitter
        self.client, self.renderer, self.sealer = client, renderer, sealer
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ttl = config["LEASE_TTL"]
        self.slot_ttl = config["SLOT_TTL"]
        self.min_interval = config["POLL_MIN_INTERVAL"]
        self.stall = config["STALL_SECONDS"]
        self.idle_exit = config["POLLER_IDLE_EXIT"]
        self.settings = schedule.Settings.from_config(config)
        self.durations = schedule.Durations()
        self.tracked: dict[str, Tracked] = {}
        self.accounts: dict[str, float] = {}  # account → last poll (Unix)
        self.busy: set[str] = set()  # accounts (or job ids) being worked on now
        self._lock = threading.Lock()
        # the request threads (hand_over) and the loop both add and drop
        # accounts: one lock keeps an account's lease, its entry in
        # self.accounts and its tracked jobs consistent
        self._owning = threading.RLock()
        self._started = False
        self._scanned = self._renewed = self._slots_renewed = 0.0
        self._elsewhere: dict[str, float] = {}  # job id -> next look (monotonic)
        jobs.on_finish.append(self._finished)
        jobs.polled_here = lambda job_id: job_id in self.tracked or job_id in self.busy

    # --- life cycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the loop once per process (a greenlet under gevent)."""
        with self._lock:
            if self._started and self._pid == os.getpid():
                return
            self._started, self._pid = True, os.getpid()
            self.tracked.clear()
            self.accounts.clear()
        atexit.register(self.release_leases)
        threading.Thread(target=self._run, name="poller", daemon=True).start()

    def release_leases(self) -> None:
        """Let another worker take this one's accounts at once (a restart then
        delays no job by LEASE_TTL)."""
        for account in list(self.accounts):
            try:
                self.store.release_lease("poll:" + account, self.holder)
            except StoreError:
                return

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            try:
                self.step(time.time())
            except StoreError as exc:
                log.warning("poller: store unavailable (%s)", exc)
            except Exception:  # the loop must survive any one bad job
                log.exception("poller step failed")
            if self.tracked or self.busy:
                idle_since = time.monotonic()
            elif self.idle_exit and time.monotonic() - idle_since > self.idle_exit:
                with self._lock:  # tests: many apps, each started on demand
                    self._started = False
                return
            time.sleep(TICK)

    def step(self, now: float) -> None:
        if now - self._scanned >= SCAN_INTERVAL:
            self._scanned = now
            self.scan()
        if now - self._renewed >= self.lease_ttl / 3:
            self._renewed = now
            self.renew()
        if now - self._slots_renewed >= self.slot_ttl / 3:
            self._slots_renewed = now
            self.renew_slots()
        by_account: dict[str, list[Tracked]] = {}
        for tracked in list(self.tracked.values()):
            by_account.setdefault(tracked.account, []).append(tracked)
        for account in list(self.accounts):
            self._maybe_poll(account, by_account.get(account, []), now)
        metrics.jobs_leased(len(self.tracked))
        metrics.IN_FLIGHT.set(len(self.tracked))

    # --- ownership ------------------------------------------------------------

    def scan(self) -> None:
        """Adopt what nobody works on: running jobs of accounts no live worker
        polls, and unsubmitted or waiting jobs nobody holds.

        A job found in another worker's hands is looked at again only after
        a third of LEASE_TTL (that worker's lease outlives that at least): a
        burst of another worker's jobs is not reread every second."""
        now = time.monotonic()
        unfinished = self.store.unfinished_jobs()
        alive = set(unfinished)
        self._elsewhere = {
            job_id: until
            for job_id, until in self._elsewhere.items()
            if until > now and job_id in alive
        }
        for job_id in unfinished:
            if job_id in self.tracked or job_id in self.busy:
                continue
            if job_id in self._elsewhere:
                continue
            job = self.store.get_job(job_id)
            if job is None or job.get("phase") == "group":
                continue  # a group is finished by its parts (generations.py)
            if job.get("phase") == "running":
                wait = 0.0 if self.track(job) else self.lease_ttl / 3
            else:
                wait = self._orphaned_in(job)
                if wait <= 0:
                    self._spawn(job_id, self._submit_orphan, job)
            if wait > 0:
                self._elsewhere[job_id] = now + wait

    def _orphaned_in(self, job: dict[str, Any]) -> float:
        """Seconds until a job that is not running needs this worker: a waiting
        job when its retry time comes, one whose creator did not submit it in
        time (the creator submits a new job itself, under its lease)."""
        now = time.time()
        if job["phase"] == "waiting":
            return job.get("retry_at", 0) - now
        if job["phase"] == "new":
            return job["created_at"] + self.lease_ttl - now
        return 0.0  # submitting: only a dead worker leaves its lease to expire

    def track(self, job: dict[str, Any]) -> bool:
        """Poll *job* here if this worker polls (or can poll) its account."""
        account = job["account"]
        tokens = self.sealer.unseal(job.get("token"))
        if not tokens:
            self.jobs.fail(job["id"], UpstreamError("The task's account is gone."))
            return False
        progress = schedule.Progress(expected=job["spec"].get("n") or 4)
        accepted = job.get("accepted_at") or time.time()
        tracked = Tracked(
            job_id=job["id"],
            account=account,
            token=tokens[0],
            history_id=job["history_id"],
            model=job["spec"]["model"],
            accepted_at=accepted,
            deadline=job["deadline"],
            progress=progress,
            urls=list(job.get("urls") or []),
            last_growth=time.time(),
        )
        tracked.due = accepted + schedule.first_poll(
            tracked.model, self.durations, self.settings
        )
        with self._owning:
            if not self._own(account):
                return False
            self.tracked[job["id"]] = tracked
        return True

    def _own(self, account: str) -> bool:
        """Hold (or take) the poll lease of *account*; under ``_owning``."""
        if account in self.accounts:
            return True
        if not self.store.acquire_lease("poll:" + account, self.holder, self.lease_ttl):
            return False
        self.accounts[account] = 0.0
        return True

    def hand_over(self, job: dict[str, Any]) -> None:
        """A job this worker just submitted: poll it here, or leave it to the
        worker that polls its account."""
        self.start()
        if job.get("phase") == "running":
            self.track(job)

    def renew(self) -> None:
        """Renew this worker's poll leases. A lease that ran out (a long pause
        of this process) is taken again if nobody else took it; if somebody
        did, that worker polls the account's jobs from now on."""
        with self._owning:
            names = ["poll:" + account for account in self.accounts]
            kept = set(self.store.renew_leases(names, self.holder, self.lease_ttl))
            for account in {t.account for t in list(self.tracked.values())} | set(
                self.accounts
            ):
                if "poll:" + account in kept:
                    continue
                last = self.accounts.pop(account, 0.0)
                if self._own(account):
                    self.accounts[account] = last
                else:
                    log.warning("lost the poll lease of account %s", account)
                    self._drop_account(account)

    def renew_slots(self) -> None:
        """Keep the concurrency slots of the jobs polled here (they run out
        after SLOT_TTL if this worker dies)."""
        by_account: dict[str, list[Tracked]] = {}
        for tracked in list(self.tracked.values()):
            by_account.setdefault(tracked.account, []).append(tracked)
        for jobs in by_account.values():
            self.submitter.accounts.renew_slots(jobs[0].token, [t.job_id for t in jobs])

    def _drop_account(self, account: str) -> None:
        self.accounts.pop(account, None)
        for job_id in [j for j, t in self.tracked.items() if t.account == account]:
            self.tracked.pop(job_id, None)

    def _spawn(self, key: str, work: Any, *args: Any) -> None:
        self.busy.add(key)

        def run() -> None:
            try:
                work(*args)
            except Exception:
                log.exception("background work on %s failed", key)
            finally:
                self.busy.discard(key)

        threading.Thread(target=run, daemon=True).start()

    def _submit_orphan(self, job: dict[str, Any]) -> None:
        with self.submitter.exclusive(job["id"]) as held:
            if not held:
                return
            job = self.store.get_job(job["id"]) or job
            if job["phase"] == "submitting":
                job = self.submitter.recover(job)
            elif job["phase"] in ("new", "waiting"):
                job = self.submitter.submit(job)
        if job.get("phase") == "running":
            self.track(job)

    # --- polling --------------------------------------------------------------

    def _maybe_poll(self, account: str, jobs: list[Tracked], now: float) -> None:
        """Poll *account*'s running *jobs* if one is due (the lease goes when
        it has none left: checked again under the lock, a request thread may
        have just handed one over)."""
        if not jobs:
            with self._owning:
                if any(t.account == account for t in self.tracked.values()):
                    return
                self.store.release_lease("poll:" + account, self.holder)
                self.accounts.pop(account, None)
            return
        last = self.accounts.get(account)
        if last is None or account in self.busy or now - last < self.min_interval:
            return
        if min(t.due for t in jobs) > now:
            return
        self.accounts[account] = now
        self._spawn(account, self._poll, jobs)

    def _poll(self, jobs: list[Tracked]) -> None:
        """One call for every running job of one account."""
        try:
            records = self.client.history(jobs[0].token, [t.history_id for t in jobs])
        except Exception as exc:  # any failure: poll again later, deadlines hold
            message = exc.message if isinstance(exc, APIError) else repr(exc)[:200]
            if not isinstance(exc, APIError):
                log.exception("poll of account %s failed", jobs[0].account)
            log.info("poll of account %s failed: %s", jobs[0].account, message)
            records = {}
            for tracked in jobs:
                tracked.due = time.time() + self.settings.finishing_interval * 2
        now = time.time()
        for tracked in jobs:
            record = records.get(tracked.history_id)
            if record is not None:
                self.observe(tracked, record, now)
            self._check_deadline(tracked, now)

    def observe(self, tracked: Tracked, record: Record, now: float) -> None:
        """Apply one poll's record to its job: progress, an end, or a next poll."""
        reading = read(tracked, record, now, self.stall, self.durations, self.settings)
        if reading.changed:
            self._progress(tracked, record)
        if reading.duration is not None:
            self.durations.add(tracked.model, reading.duration)
        if reading.ended:
            self._end(tracked, reading.error)

    def _check_deadline(self, tracked: Tracked, now: float) -> None:
        if now < tracked.deadline or tracked.job_id not in self.tracked:
            return
        self._end(
            tracked,
            UpstreamTimeoutError(
                f"The generation did not finish before its deadline (record "
                f"{tracked.history_id}; it may still finish on Jimeng's side).",
                retryable=False,
            ),
        )

    def _progress(self, tracked: Tracked, record: Record) -> None:
        progress = {
            "images": len(tracked.urls),
            "expected": tracked.progress.expected,
            "stage": record.stage,
        }
        if record.queue is not None:
            progress["queue_position"] = record.queue.position
            progress["queue_length"] = record.queue.length
        self.jobs.update(tracked.job_id, progress=progress, urls=tracked.urls)

    def _end(self, tracked: Tracked, error: APIError | None) -> None:
        """Finish the job: the images if there are any (paid for: never
        dropped, even when the record failed or stalled), else the error."""
        self.tracked.pop(tracked.job_id, None)
        if not tracked.urls:
            error = error or GenerationFailedError(
                f"Jimeng finished without images (record {tracked.history_id})."
            )
            error.retryable = False  # it was submitted: a retry would pay again
            self.jobs.fail(tracked.job_id, error)
            return
        self._spawn(tracked.job_id, self._complete, tracked)

    def _complete(self, tracked: Tracked) -> None:
        job = self.store.get_job(tracked.job_id)
        if job is None:
            return
        asked = tracked.progress.expected
        # fewer than asked is partial when the task ended early (stall, failure,
        # deadline) or a count was asked for explicitly; a record Jimeng calls
        # done with its own default count is whole
        explicit = job["spec"].get("draft", {}).get("n") is not None
        short = len(tracked.urls) < asked and (explicit or not tracked.done)
        partial = f"{len(tracked.urls)}/{asked}" if short else None
        job["partial"] = partial
        try:
            result, notice = self.renderer.deliver(job, tracked.urls, tracked.token)
        except APIError as exc:
            exc.retryable = False  # it was paid for: a retry would pay again
            self.jobs.fail(tracked.job_id, exc)
            return
        self.jobs.finish(
            tracked.job_id,
            status="completed",
            urls=tracked.urls,
            result=result,
            partial=partial,
            notice=notice,
            progress={"images": len(tracked.urls), "expected": asked, "stage": "final"},
        )

    def _finished(self, job: dict[str, Any]) -> None:
        """A finish hook: stop polling; free the account's slot."""
        self.tracked.pop(job["id"], None)
        if job.get("account"):
            self.submitter.accounts.release(job["account"], job["id"])
