"""A task's timeline: queue, processing stages, images one by one, its fate.

Times are on the simulated clock (:class:`~simulator.state.SimClock`) and already
multiplied by ``time_scale`` when the task is created. With ``D`` = processing
time and ``start`` = the end of the queue wait::

    created … start            status 20 with queue_info (only if queued)
    start … start + 0.25 D     status 20 ("submitted")
    … start + 0.40 D           status 42
    … start + D                status 45; image i of n appears at
                               start + 0.4 D + 0.6 D · i / n
    start + D                  status 50 with all n images

Fates: ``blocked`` (status 30, fail_code 2038 at ``created + 0.25 D``, no queue,
no images), ``stall`` (after ``stop_at`` images the rest is delayed by
``stall_shift`` seconds, forever if ``None``), ``partial_fail`` (status 30 with
``stop_at`` images when image ``stop_at + 1`` would have appeared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Fractions of the processing time: "submitted" (status 20), then 42.
QUEUED_FRACTION = 0.25
THINKING_FRACTION = 0.15
#: Simulated seconds each queue position takes (sets queue_idx from the wait).
QUEUE_SLOT_SECONDS = 3.0
#: queue_info.queue_status while waiting; priority of a normal account [I].
QUEUE_STATUS_WAITING = 1
QUEUE_PRIORITY = 1


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass
class Task:
    history_id: str
    submit_id: str
    session: str
    model: str
    prompt: str
    width: int
    height: int
    gen_count: int
    created: float
    duration: float  # processing time after the queue (scaled)
    blocked: bool
    item_ids: list[str] = field(default_factory=list)
    image_keys: list[str] = field(default_factory=list)
    queue_wait: float = 0.0  # scaled
    queue_position: int = 0  # queue_idx at submission
    queue_length: int = 0
    fate: str = "ok"  # ok | blocked | stall | partial_fail
    stop_at: int = 0  # images before a stall or a partial failure
    stall_shift: float | None = None  # None = the stall lasts forever
    fail_code: str = ""
    final_without_items: bool = False
    cost: int = 0
    kind: str = "image"  # or "video": status 20 until done, one video item
    video: dict[str, Any] = field(default_factory=dict)
    # What the clients saw (mutated under the state lock by history polls).
    polls: int = 0
    first_polled_at: float | None = None
    last_polled_at: float | None = None
    final_seen_at: float | None = None  # first poll that saw a final status
    delivered_at: float | None = None  # first final poll that had item_list

    # -- timeline -----------------------------------------------------------
    @property
    def start(self) -> float:
        """End of the queue phase."""
        return self.created + self.queue_wait

    @property
    def think_at(self) -> float:
        return self.start + self.duration * QUEUED_FRACTION

    @property
    def post_at(self) -> float:
        return self.start + self.duration * (QUEUED_FRACTION + THINKING_FRACTION)

    def image_time(self, index: int) -> float:
        """When the image count reaches *index* (1..n), before a failure."""
        share = self.duration * (1 - QUEUED_FRACTION - THINKING_FRACTION)
        at = self.post_at + share * index / max(self.gen_count, 1)
        if self.fate == "stall" and index > self.stop_at:
            at += math.inf if self.stall_shift is None else self.stall_shift
        return at

    @property
    def finished_at(self) -> float:
        """When the final status (30 or 50) appears; ``inf`` for endless stalls."""
        if self.blocked:
            return self.created + self.duration * QUEUED_FRACTION
        if self.fate == "partial_fail":
            return self.image_time(self.stop_at + 1)
        return self.image_time(self.gen_count)

    @property
    def final_count(self) -> int:
        """Images the task ever shows."""
        if self.blocked:
            return 0
        if self.fate == "partial_fail":
            return self.stop_at
        if self.fate == "stall" and self.stall_shift is None:
            return self.stop_at
        return self.gen_count

    def progress(self, now: float) -> tuple[int, int]:
        """Return (status, finished image count) at *now*."""
        if now >= self.finished_at:
            if self.blocked or self.fate == "partial_fail":
                return 30, self.final_count
            return 50, self.gen_count
        if self.kind == "video":
            return 20, 0
        if self.blocked or now < self.think_at:
            return 20, 0
        if now < self.post_at:
            return 42, 0
        done = sum(1 for i in range(1, self.gen_count) if self.image_time(i) <= now)
        return 45, done

    def queued(self, now: float) -> bool:
        return now < self.start

    def queue_info(self, now: float) -> dict[str, Any]:
        """The record's ``queue_info`` while queued (queue_idx counts down to 0)."""
        remaining = max(0.0, self.start - now)
        idx = int(self.queue_position * remaining / self.queue_wait)
        return {
            "queue_idx": min(idx, self.queue_position),
            "priority": QUEUE_PRIORITY,
            "queue_status": QUEUE_STATUS_WAITING,
            "queue_length": self.queue_length,
        }

    def credits_per_item(self) -> list[int]:
        """The charged cost spread over the images (``extra.credits_consume``)."""
        n = max(self.gen_count, 1)
        base, rest = divmod(self.cost, n)
        return [base + (1 if i < rest else 0) for i in range(n)]

    # -- introspection ------------------------------------------------------
    def summary(self, now: float) -> dict[str, Any]:
        status, done = self.progress(now)
        finished = _finite(self.finished_at)
        count = self.final_count
        first_image = self.image_time(1) if count else None
        last_image = self.image_time(count) if count else None
        latency = None
        if self.delivered_at is not None and finished is not None:
            latency = self.delivered_at - finished
        return {
            "submit_id": self.submit_id,
            "kind": self.kind,
            "video": dict(self.video),
            "session": self.session,
            "model": self.model,
            "prompt": self.prompt,
            "width": self.width,
            "height": self.height,
            "gen_count": self.gen_count,
            "blocked": self.blocked,
            "fate": self.fate,
            "fail_code": self.fail_code,
            "stop_at": self.stop_at,
            "planned_seconds": (
                round(finished - self.created, 6) if finished is not None else None
            ),
            "queue_seconds": round(self.queue_wait, 6),
            "queue_position": self.queue_position,
            "queue_length": self.queue_length,
            "processing_seconds": round(self.duration, 6),
            "created": self.created,
            "queue_end": self.start,
            "first_image_at": _finite(first_image),
            "last_image_at": _finite(last_image),
            "finished": finished,
            "status": status,
            "finished_image_count": done,
            "images_expected": count,
            "polls": self.polls,
            "first_polled_at": self.first_polled_at,
            "last_polled_at": self.last_polled_at,
            "final_seen_at": self.final_seen_at,
            "final_polled_at": self.delivered_at,
            "added_latency": latency,
        }
