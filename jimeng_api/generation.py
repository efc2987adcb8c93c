"""The generation flow shared by the images and chat endpoints.

Submit once (failing over across session ids for account-level errors, claiming
the daily grant when credits run out), then poll the record until the images are
there. Once a record exists only the poll is retried, never the submit, and every
error is marked non-retryable so that no client retry pays twice.
"""

from __future__ import annotations

import logging
import random
import statistics
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

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


class TaskTimes:
    """Recent task durations per model, to poll near the expected finish."""

    def __init__(self, window: int = 50) -> None:
        self._samples: dict[str, deque[float]] = {}
        self._window = window

    def add(self, model: str, seconds: float) -> None:
        self._samples.setdefault(model, deque(maxlen=self._window)).append(seconds)

    def quantiles(self, model: str) -> tuple[float, float] | None:
        """Return (p10, p90) of recent durations, or None with too few samples."""
        samples = self._samples.get(model)
        if not samples or len(samples) < 5:
            return None
        cuts = statistics.quantiles(samples, n=10)
        return cuts[0], cuts[-1]


class Generator:
    """Runs generations through a JimengClient."""

    def __init__(self, client: JimengClient, config: Mapping[str, Any]) -> None:
        self.client = client
        self.config = config
        self.cooldowns = Cooldowns(config["TOKEN_COOLDOWN"])
        self.times = TaskTimes()
        self._claimed: BoundedMap[tuple[str, str], bool] = BoundedMap(10000)

    # --- submit ---

    def start(self, tokens: Sequence[str], draft: Draft, model: str) -> Job:
        """Submit *draft* with the first session id that can pay for it."""
        started = time.monotonic()
        deadline = started + self.config["GENERATION_TIMEOUT"]
        errors: list[APIError] = []
        first = random.randrange(len(tokens))
        for token in self.cooldowns.order(tokens, first):
            try:
                history_id = self._submit(token, draft, deadline)
            except ACCOUNT_ERRORS as exc:
                errors.append(exc)
                self._cool_down(token, exc)
                continue
            except APIError as exc:
                self._count_failure(exc)
                raise
            return Job(token, history_id, model, draft.n, started, deadline)
        best = min(errors, key=lambda e: _rank(e))
        self._count_failure(best)
        raise best

    def _submit(self, token: str, draft: Draft, deadline: float) -> str:
        try:
            return self.client.submit(token, draft, deadline=deadline)
        except InsufficientQuotaError:
            if not self._claim_daily_grant(token):
                raise
            return self.client.submit(token, draft, deadline=deadline)

    def _claim_daily_grant(self, token: str) -> bool:
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

    def _poll(self, job: Job, tick: float | None) -> Iterator[list[str] | None]:
        polls = 0
        while True:
            yield from self._wait(job, self._delay(job, polls), tick)
            polls += 1
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
        seconds = time.monotonic() - job.started
        self.times.add(job.model, seconds)
        metrics.GENERATION_SECONDS.labels(job.model, "ok").observe(seconds)

    def _delay(self, job: Job, polls: int) -> float:
        """Seconds to wait before poll number *polls* (0 = the first)."""
        c = self.config
        learned = self.times.quantiles(job.model) if c["POLL_ADAPTIVE"] else None
        elapsed = time.monotonic() - job.started
        if polls == 0:
            first = learned[0] * 0.9 if learned else c["POLL_FIRST_DELAY"]
            return max(first - elapsed, 0.0)
        late_after = learned[1] if learned else 60.0
        if elapsed <= late_after:
            return c["POLL_INTERVAL"]
        grown = c["POLL_INTERVAL"] * 1.5 ** min(polls, 20)
        return min(grown, c["POLL_MAX_INTERVAL"])

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


def _rank(exc: APIError) -> int:
    for index, error_class in enumerate(ACCOUNT_ERRORS):
        if type(exc) is error_class:
            return index
    return len(ACCOUNT_ERRORS)
