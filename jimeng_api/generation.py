"""The generation flow shared by the images and chat endpoints.

Submit once (failing over across session ids for account-level errors, claiming
the daily grant when credits run out), then poll the record until the images are
there. Once a record exists only the poll is retried, never the submit, and every
error is marked non-retryable so that no client retry pays twice.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from . import metrics
from .drafts import Draft
from .errors import (
    APIError,
    ContentFilteredError,
    GenerationFailedError,
    InsufficientQuotaError,
    PermissionDeniedError,
    RateLimitError,
    SessionExpiredError,
    UpstreamError,
    UpstreamTimeoutError,
)
from .logs import token_id
from .tokens import BoundedMap, Cooldowns
from .upstream import DONE, FAILED, JimengClient, Record

log = logging.getLogger(__name__)

#: account-level failures: the next session id may succeed, most useful first
ACCOUNT_ERRORS: tuple[type[APIError], ...] = (
    RateLimitError,
    InsufficientQuotaError,
    PermissionDeniedError,
    SessionExpiredError,
)
#: poll failures that end in another poll (until the deadline)
POLL_AGAIN = (UpstreamError, UpstreamTimeoutError, RateLimitError)
BEIJING = timezone(timedelta(hours=8))  # Jimeng's day starts at midnight in China
DEFAULT_IMAGE_COUNT = 4
POLLS_PER_WINDOW = 4  # polls spread across the usual finishing window
BUSY = (
    "Every pooled session is running its maximum of generations "
    "(POOL_MAX_CONCURRENCY); try again shortly."
)


@dataclass
class Job:
    """A submitted generation."""

    token: str
    history_id: str
    model: str
    expected: int | None
    started: float
    deadline: float
    urls: list[str] = field(default_factory=list)
    pending_at: float = 0.0  # when a poll last found the task unfinished
    accepted: float = field(default_factory=time.monotonic)  # when submit returned
    #: frees the session's concurrency slot (pooled mode); safe to call twice
    release: Callable[[], None] = field(default=lambda: None, repr=False)


class Scheduler(Protocol):
    """Pooled mode's say in a generation (``pool.AccountPool``)."""

    def order(self, tokens: Sequence[str]) -> list[str]: ...

    def hold(self, token: str) -> Callable[[], None] | None: ...


class TaskTimes:
    """Task durations per model, to poll near the expected finish.

    A duration is estimated as the midpoint between the last poll that found the
    task unfinished and the poll that found it done, counted from Jimeng's
    acceptance, so our own lag and load do not leak into what is learned. Samples
    are kept as a random-replacement reservoir: a burst's last (slowest) tasks do
    not push out its fast ones, and old samples fade out gradually.
    """

    def __init__(self, size: int = 1000, refresh: float = 1.0) -> None:
        self._samples: dict[str, list[float]] = {}
        self._windows: dict[str, tuple[float, float, float]] = {}  # lo, hi, at
        self._size = size
        self._refresh = refresh

    def add(self, model: str, seconds: float) -> None:
        samples = self._samples.setdefault(model, [])
        if len(samples) < self._size:
            samples.append(seconds)
        else:
            samples[random.randrange(self._size)] = seconds
        if len(samples) < 30:
            self._windows.pop(model, None)  # recompute at once while learning

    def window(self, model: str) -> tuple[float, float] | None:
        """Return when tasks of *model* usually finish: (early, late) seconds.

        With few samples the window starts well before the fastest one seen,
        the margin shrinking as samples accumulate; None before any sample.
        Recomputed at most once per *refresh* seconds (it sorts the samples).
        """
        cached = self._windows.get(model)
        now = time.monotonic()
        if cached and now - cached[2] < self._refresh:
            return cached[0], cached[1]
        samples = self._samples.get(model)
        if not samples:
            return None
        if len(samples) >= 30:
            cuts = statistics.quantiles(samples, n=20)
            lo, hi = cuts[0], cuts[-1]
        else:
            lo = min(samples) * (1 - 0.2 / math.sqrt(len(samples)))
            hi = max(samples)
        self._windows[model] = (lo, hi, now)
        return lo, hi

    def settled(self, model: str) -> bool:
        """Return whether enough tasks were seen to trust the window's width."""
        return len(self._samples.get(model, ())) >= 30

    def late_after(self, model: str) -> float | None:
        """Return the age after which a task counts as unusually slow."""
        window = self.window(model)
        return 2 * window[1] if window else None


class Generator:
    """Runs generations through a JimengClient."""

    def __init__(self, client: JimengClient, config: Mapping[str, Any]) -> None:
        self.client = client
        self.config = config
        self.cooldowns = Cooldowns(config["TOKEN_COOLDOWN"])
        self.times = TaskTimes()
        self._claimed: BoundedMap[tuple[str, str], bool] = BoundedMap(10000)
        self.scheduler: Scheduler | None = None  # set in pooled mode (pool.py)

    # --- submit ---

    def start(self, tokens: Sequence[str], draft: Draft, model: str) -> Job:
        """Submit *draft* with the first session id that can pay for it."""
        started = time.monotonic()
        deadline = started + self.config["GENERATION_TIMEOUT"]
        errors: list[APIError] = []
        for token in self._candidates(tokens):
            release = self.scheduler.hold(token) if self.scheduler else _nothing
            if release is None:  # pooled mode: the session is at its cap
                errors.append(RateLimitError(BUSY, retryable=True))
                continue
            history_id = None
            try:
                history_id = self._submit(token, draft, deadline)
            except ACCOUNT_ERRORS as exc:
                errors.append(exc)
                self._cool_down(token, exc)
                continue
            except APIError as exc:
                self._count_failure(exc)
                raise
            finally:
                if history_id is None:
                    release()  # nothing was submitted on this session
            return Job(
                token, history_id, model, draft.n, started, deadline, release=release
            )
        best = min(errors, key=lambda e: _rank(e))
        self._count_failure(best)
        raise best

    def _candidates(self, tokens: Sequence[str]) -> list[str]:
        """Return *tokens* in the order to try them."""
        if self.scheduler:
            return self.scheduler.order(tokens)
        return self.cooldowns.order(tokens, random.randrange(len(tokens)))

    def _submit(self, token: str, draft: Draft, deadline: float) -> str:
        try:
            return self.client.submit(token, draft, deadline=deadline)
        except InsufficientQuotaError:
            if not self.claim_daily_grant(token):
                raise
            return self.client.submit(token, draft, deadline=deadline)

    def claim_daily_grant(self, token: str) -> bool:
        """Claim today's free credits once per session id; return whether to retry."""
        key = (token_id(token), datetime.now(BEIJING).date().isoformat())
        if self._claimed.get(key):
            return False
        self._claimed.set(key, True)
        try:
            received = self.client.receive_credits(token)
        except APIError as exc:
            log.info("daily grant for %s refused: %s", token_id(token), exc.message)
            return False
        log.info(
            "claimed %s daily credits for %s",
            received.get("receive_quota", "?"),
            token_id(token),
        )
        return True

    def _cool_down(self, token: str, exc: APIError) -> None:
        log.info("session %s skipped: %s", token_id(token), exc.message)
        if isinstance(exc, InsufficientQuotaError) or not isinstance(
            exc, RateLimitError
        ):
            self.cooldowns.mark(token)

    # --- poll ---

    def progress(
        self, job: Job, tick: float | None = None
    ) -> Iterator[list[str] | None]:
        """Yield the image URLs found so far after each poll, until all are there.

        Between polls, yields None every *tick* seconds (for SSE keep-alives).
        Raises the mapped error if the record fails or the deadline passes.
        """
        with metrics.tracking(metrics.IN_FLIGHT):
            try:
                yield from self._poll(job, tick)
            except APIError as exc:
                exc.retryable = False  # the record exists: a retry would pay again
                self._count_failure(exc)
                metrics.GENERATION_SECONDS.labels(job.model, "error").observe(
                    time.monotonic() - job.started
                )
                raise
            finally:
                job.release()  # also when the client went away (GeneratorExit)

    def _poll(self, job: Job, tick: float | None) -> Iterator[list[str] | None]:
        polls = 0
        while True:
            yield from self._wait(job, self._delay(job, polls), tick)
            polls += 1
            polled_at = time.monotonic()
            record = self._poll_once(job)
            if record is None:
                continue
            if record.status in FAILED:
                raise self.client.fail_error(record, job.history_id)
            if len(record.urls) > len(job.urls):
                job.urls = record.urls
                yield list(job.urls)
            if self._finished(job, record):
                self._succeeded(job, record)
                return
            job.pending_at = polled_at

    def _poll_once(self, job: Job) -> Record | None:
        """Poll once; a transient failure means "ask again", not an error."""
        try:
            return self.client.history(job.token, job.history_id, deadline=job.deadline)
        except (UpstreamError, RateLimitError) as exc:
            if type(exc) not in POLL_AGAIN:
                raise
            log.warning(
                "poll of %s failed, will retry: %s", job.history_id, exc.message
            )
            return None

    def _finished(self, job: Job, record: Record) -> bool:
        if record.status in DONE:
            return True
        expected = job.expected or record.total or DEFAULT_IMAGE_COUNT
        return len(record.urls) >= expected

    def _succeeded(self, job: Job, record: Record) -> None:
        if not record.urls:
            raise GenerationFailedError(
                f"Jimeng finished without images (status {record.status}, "
                f"record {job.history_id})."
            )
        job.urls = record.urls
        now = time.monotonic()
        pending_at = job.pending_at or job.accepted
        self.times.add(job.model, (pending_at + now) / 2 - job.accepted)
        metrics.GENERATION_SECONDS.labels(job.model, "ok").observe(now - job.started)

    def _delay(self, job: Job, polls: int) -> float:
        """Seconds to wait before poll number *polls* (0 = the first).

        Learned: the first poll at the start of the model's usual finishing
        window; once enough tasks were seen, about four polls across the window
        (never further apart than POLL_INTERVAL); then POLL_INTERVAL, slowing
        down for unusually long tasks. Ages count from Jimeng's acceptance.
        """
        c = self.config
        window = self.times.window(job.model) if c["POLL_ADAPTIVE"] else None
        elapsed = time.monotonic() - job.accepted  # the task's age upstream
        if polls == 0:
            first = c["POLL_FIRST_DELAY"] if window is None else window[0]
            return max(first - elapsed, 0.0)
        interval = c["POLL_INTERVAL"]
        if window is not None and elapsed < window[1] and self.times.settled(job.model):
            return max(min(interval, (window[1] - window[0]) / POLLS_PER_WINDOW), 0.1)
        late = self.times.late_after(job.model) if window else None
        if elapsed <= max(late or 0.0, 60.0):
            return interval
        return min(interval * 1.5 ** min(polls, 20), c["POLL_MAX_INTERVAL"])

    def _wait(self, job: Job, seconds: float, tick: float | None) -> Iterator[None]:
        """Sleep *seconds* (cut short by the deadline), yielding None per *tick*."""
        end = min(time.monotonic() + seconds, job.deadline)
        while True:
            now = time.monotonic()
            if now >= job.deadline:
                limit = self.config["GENERATION_TIMEOUT"]
                raise UpstreamTimeoutError(
                    f"The generation did not finish within {limit:g} s "
                    f"(record {job.history_id}; it may still finish on Jimeng's side)."
                )
            if now >= end:
                return
            time.sleep(min(end - now, tick or end - now))
            if tick:
                yield None

    def run(self, tokens: Sequence[str], draft: Draft, model: str) -> list[str]:
        """Submit and wait; return the image URLs."""
        job = self.start(tokens, draft, model)
        for _ in self.progress(job):
            pass
        return job.urls

    def _count_failure(self, exc: APIError) -> None:
        if isinstance(exc, ContentFilteredError):
            metrics.generation_failed("content_filtered")
        elif isinstance(exc, InsufficientQuotaError):
            metrics.generation_failed("insufficient_quota")
        else:
            metrics.generation_failed(exc.code or type(exc).__name__)


def _nothing() -> None:
    pass


def _rank(exc: APIError) -> int:
    for index, error_class in enumerate(ACCOUNT_ERRORS):
        if type(exc) is error_class:
            return index
    return len(ACCOUNT_ERRORS)
