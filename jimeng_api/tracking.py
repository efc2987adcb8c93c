"""What one poll's record means for a running job: progress to record, its end
(with or without an error), or when to look again. Pure: the poller does the
store writes; the schedule (``schedule.py``) says how long to wait."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import schedule
from .errors import APIError
from .upstream import Record

FINAL_REPOLLS = 2  # polls of a finished record that came without item_list


@dataclass
class Tracked:
    """A running job a worker polls."""

    job_id: str
    account: str
    token: str
    history_id: str
    model: str
    accepted_at: float  # Unix seconds (the same on every worker)
    deadline: float
    progress: schedule.Progress
    urls: list[str] = field(default_factory=list)
    due: float = 0.0  # Unix seconds of the next poll
    last_growth: float = 0.0
    final_repolls: int = 0
    done: bool = False  # Jimeng called the record finished
    stage: str = "unknown"


@dataclass
class Reading:
    """What the poller does after one record was read."""

    changed: bool = False  # new images or a new stage: record the progress
    ended: bool = False  # deliver the images (any), else fail with *error*
    error: APIError | None = None
    duration: float | None = None  # a finished task's duration, to learn


def read(
    tracked: Tracked,
    record: Record,
    now: float,
    stall: float,
    durations: schedule.Durations,
    settings: schedule.Settings,
) -> Reading:
    """Apply *record* to *tracked* (its images, stage and next poll) and say
    what follows."""
    age = now - tracked.accepted_at
    position = record.queue.position if record.queue else None
    # the poll before this one (the acceptance, for a first poll): a task
    # done at a first poll that came too late teaches an earlier first poll
    previous = tracked.progress.last_poll if tracked.progress.polls else 0.0
    tracked.progress.observe(age, record.stage, len(record.urls), position)
    reading = Reading()
    grew = len(record.urls) > len(tracked.urls)
    if grew:
        tracked.urls, tracked.last_growth = list(record.urls), now
    if grew or record.stage != tracked.stage:
        tracked.stage = record.stage
        reading.changed = True
    if record.failed:
        reading.ended, reading.error = True, record.error(tracked.history_id)
    elif record.done and not record.has_items and tracked.final_repolls < FINAL_REPOLLS:
        tracked.final_repolls += 1  # finished, but the images were not listed
        tracked.due = now + settings.finishing_interval
    elif record.done or len(tracked.urls) >= tracked.progress.expected:
        tracked.done = record.done
        # midway between the last poll that found it unfinished and this
        # one, so the polling lag is not learned
        finished = (previous + age) / 2
        reading.duration = finished - (tracked.progress.processing_since or 0)
        reading.ended = True
    elif tracked.urls and now - tracked.last_growth > stall:
        reading.ended = True  # stalled: deliver what was paid for
    else:
        wait = schedule.next_poll(tracked.model, tracked.progress, durations, settings)
        tracked.due = now + wait
    return reading
