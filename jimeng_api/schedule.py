"""When to poll a task next, and why: pure functions of what was observed.

Signals, in the order they are trusted:
1. the rate at which images appear (statuses 42/45): once two counts are seen,
   the finish is extrapolated from that rate;
2. the stage: ``queued`` (``queue_info``) polls rarely, scaled by the queue
   position; ``processing`` polls at the learned durations;
3. the durations learned per model (from Jimeng's acceptance to the finish),
   or ``POLL_EXPECTED_SECONDS`` before any was seen.
Far from the predicted finish it waits ``POLL_APPROACH`` of the time left
(0.4: the gap shrinks geometrically, so a task costs a few polls whatever its
length, capped by ``POLL_MAX_INTERVAL``); within ``POLL_DENSE_WINDOW`` seconds of
it, every ``POLL_FINISHING_INTERVAL``. Measured on recorded lognormal timelines
(median 30 s): about 6 polls a task and 0.9 s mean lateness, before batching
(tests/test_schedule.py). The poller adds the
per-account floor (``POLL_MIN_INTERVAL``) and batches an account's tasks.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SAMPLES = 500  # durations kept per model (random replacement once full)
SETTLED = 20  # samples after which the learned quantiles are trusted


@dataclass(frozen=True)
class Settings:
    first_delay: float
    expected: float
    finishing_interval: float
    queued_interval: float
    max_interval: float
    approach: float  # share of the predicted time left to wait
    dense_window: float  # predicted seconds left below which polls are dense

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            first_delay=config["POLL_FIRST_DELAY"],
            expected=config["POLL_EXPECTED_SECONDS"],
            finishing_interval=config["POLL_FINISHING_INTERVAL"],
            queued_interval=config["POLL_QUEUED_INTERVAL"],
            max_interval=config["POLL_MAX_INTERVAL"],
            approach=config["POLL_APPROACH"],
            dense_window=config["POLL_DENSE_WINDOW"],
        )


@dataclass
class Progress:
    """What the polls of one task have shown, in seconds since acceptance."""

    polls: int = 0
    last_poll: float = 0.0  # age at the last poll
    stage: str = "unknown"  # queued, processing, finishing
    queue_position: int | None = None
    images: int = 0
    expected: int = 4
    growth: list[tuple[float, int]] = field(default_factory=list)  # (age, count)
    processing_since: float | None = None  # age when the queue was left

    def observe(self, age: float, stage: str, images: int, queue: int | None) -> None:
        """Record one poll at *age*; growth is dated midway since the last poll."""
        midpoint = (self.last_poll + age) / 2 if self.polls else age
        if images > self.images:
            self.growth.append((midpoint, images))
            del self.growth[:-4]
        if stage != "queued" and self.processing_since is None:
            self.processing_since = 0.0 if self.stage in ("unknown",) else midpoint
        self.polls += 1
        self.last_poll = age
        self.stage, self.images, self.queue_position = stage, images, queue


class Durations:
    """Task durations per model, learned from finished tasks."""

    def __init__(self) -> None:
        self._samples: dict[str, list[float]] = {}
        self._sorted: dict[str, list[float]] = {}

    def add(self, model: str, seconds: float) -> None:
        samples = self._samples.setdefault(model, [])
        if len(samples) < SAMPLES:
            samples.append(seconds)
        else:
            samples[random.randrange(SAMPLES)] = seconds
        self._sorted.pop(model, None)

    def quantile(self, model: str, q: float) -> float | None:
        """Return the *q* quantile of the learned durations (None: too few)."""
        ordered = self._sorted.get(model)
        if ordered is None:
            ordered = self._sorted[model] = sorted(self._samples.get(model, ()))
        if len(ordered) < SETTLED:
            return None
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    def remaining(self, model: str, age: float, expected: float) -> float:
        """Median time left for a task of *model* still running at *age*."""
        ordered = self._sorted.get(model) or sorted(self._samples.get(model, ()))
        if len(ordered) >= SETTLED:
            later = ordered[bisect.bisect_right(ordered, age) :]
            if later:
                return later[len(later) // 2] - age
            return max(age * 0.25, 1.0)
        if age < expected:
            return expected - age
        return max(age * 0.25, 1.0)


def first_poll(model: str, durations: Durations, s: Settings) -> float:
    """Seconds after acceptance of the first poll: at the fast end of the
    learned durations, which is rarely too late and never much too early."""
    fast = durations.quantile(model, 0.05)
    guess = fast if fast is not None else s.expected * 0.4
    return max(s.first_delay, guess)


def next_poll(
    model: str, progress: Progress, durations: Durations, s: Settings
) -> float:
    """Seconds to wait after the poll just recorded in *progress*."""
    if progress.stage == "queued":
        position = progress.queue_position or 1
        return _clamp(s.queued_interval * min(position, 4), s)
    eta = _eta_from_growth(progress)
    if eta is None:
        eta = durations.remaining(model, _processing_age(progress), s.expected)
    if eta <= s.dense_window:
        return _clamp(s.finishing_interval, s)  # the finish is near: densely
    return _clamp(eta * s.approach, s)  # halve the distance, roughly


def _processing_age(progress: Progress) -> float:
    """Age of the task counted from when it left the queue."""
    return progress.last_poll - (progress.processing_since or 0.0)


def _eta_from_growth(progress: Progress) -> float | None:
    """Seconds until the last image, extrapolated from the rate images appear."""
    if not progress.growth:
        return None
    left = max(progress.expected - progress.images, 0)
    if len(progress.growth) >= 2:
        (a0, k0), (a1, k1) = progress.growth[-2], progress.growth[-1]
        per_image = (a1 - a0) / max(k1 - k0, 1)
    else:
        start = progress.processing_since or 0.0
        a1, k1 = progress.growth[-1]
        per_image = (a1 - start) / (k1 + 1.5)  # images start part-way through
    return max(a1 + (left + 0.5) * per_image - progress.last_poll, 0.0)


def _clamp(seconds: float, s: Settings) -> float:
    return min(max(seconds, s.finishing_interval), s.max_interval)
