"""schedule.py: when to poll a task. Measured on synthetic timelines shaped like
Jimeng's (simulator/timeline.py): lognormal processing times (median 30 s),
status 20, then 42, then 45 with the images appearing one by one, then 50.

The numbers are measured here, with the production settings and no batching
(the poller adds the per-account floor and batches an account's tasks)."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, replace

import pytest

from config import Config
from jimeng_api import schedule

SETTINGS = schedule.Settings.from_config(
    {k: getattr(Config, k) for k in dir(Config) if k.isupper()}
)
MODEL = "jimeng-4.0"
QUEUE_SLOT_SECONDS = 3.0  # seconds one queue position takes


@dataclass(frozen=True)
class Timeline:
    """One task, from its acceptance (t = 0): *queue* seconds queued, then
    *duration* seconds of processing; *n* images."""

    duration: float
    n: int = 4
    queue: float = 0.0

    @property
    def finish(self) -> float:
        return self.queue + self.duration

    def at(self, t: float) -> tuple[str, int, int | None, bool]:
        """(stage, images, queue position, final) as a poll at *t* sees them."""
        if t < self.queue:
            position = int((self.queue - t) / QUEUE_SLOT_SECONDS) + 1
            return "queued", 0, position, False
        age, d = t - self.queue, self.duration
        if age >= d:
            return "final", self.n, None, True
        if age < 0.25 * d:
            return "processing", 0, None, False  # status 20
        images = 0
        if age >= 0.4 * d:  # status 45: image i appears at 0.4 d + 0.6 d i / n
            images = min(int((age - 0.4 * d) / (0.6 * d) * self.n), self.n)
        status = 45 if age >= 0.4 * d else 42
        return (
            ("finishing" if status in (42, 45) else "processing"),
            images,
            None,
            False,
        )


@dataclass
class Outcome:
    polls: int
    lateness: float  # seconds from the finish to the poll that saw it
    queued_polls: int
    gaps: list[float]


def follow(
    timeline: Timeline, durations: schedule.Durations, s: schedule.Settings
) -> Outcome:
    """Poll one task the way the poller does; learn its duration at the end
    (the midpoint of the last two polls, from when it left the queue)."""
    progress = schedule.Progress(expected=timeline.n)
    t = schedule.first_poll(MODEL, durations, s)
    previous, polls, queued, gaps = 0.0, 0, 0, []
    while True:
        polls += 1
        stage, images, position, final = timeline.at(t)
        queued += stage == "queued"
        progress.observe(t, stage, images, position)
        if final or images >= timeline.n:
            break
        wait = schedule.next_poll(MODEL, progress, durations, s)
        gaps.append(wait)
        previous, t = t, t + wait
    finished = (previous + t) / 2 if polls > 1 else t
    durations.add(MODEL, finished - (progress.processing_since or 0.0))
    return Outcome(polls, t - timeline.finish, queued, gaps)


def lognormal_timelines(count: int, seed: int, sigma: float = 0.35, **kw):
    rng = random.Random(seed)
    return [Timeline(30 * math.exp(rng.gauss(0, sigma)), **kw) for _ in range(count)]


def run(timelines, s: schedule.Settings = SETTINGS) -> list[Outcome]:
    durations = schedule.Durations()  # cold at first: the warm-up is counted
    return [follow(t, durations, s) for t in timelines]


# --- measured on whole runs ----------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_few_polls_and_little_lateness_on_lognormal_timelines(seed):
    outcomes = run(lognormal_timelines(400, seed))
    polls = statistics.mean(o.polls for o in outcomes)
    lateness = sorted(o.lateness for o in outcomes)
    print(f"seed {seed}: {polls:.2f} polls a task, "
          f"{statistics.mean(lateness):.2f} s mean lateness")  # fmt: skip
    assert polls <= 8
    assert statistics.mean(lateness) <= 1.5
    assert lateness[0] >= 0  # a poll never "sees" a finish before it happens
    assert lateness[int(0.95 * len(lateness))] <= 5.0


def test_wider_spread_still_costs_few_polls():
    outcomes = run(lognormal_timelines(400, seed=11, sigma=0.6))
    assert statistics.mean(o.polls for o in outcomes) <= 8
    assert statistics.mean(o.lateness for o in outcomes) <= 1.5


def test_learning_pays_off():
    outcomes = run(lognormal_timelines(300, seed=5))
    cold = statistics.mean(o.polls for o in outcomes[:10])
    warm = statistics.mean(o.polls for o in outcomes[100:])
    assert warm < cold


def test_the_measurement_tells_a_bad_schedule():
    """Poll every second once the first poll is made: the bound above fails."""
    dense = replace(SETTINGS, dense_window=600)
    outcomes = run(lognormal_timelines(100, seed=1), dense)
    assert statistics.mean(o.polls for o in outcomes) > 8
    late = replace(SETTINGS, approach=1.0, dense_window=0, max_interval=60)
    outcomes = run(lognormal_timelines(100, seed=1), late)
    assert statistics.mean(o.lateness for o in outcomes) > 1.5


def test_every_wait_stays_within_the_configured_bounds():
    for outcome in run(lognormal_timelines(200, seed=4, sigma=0.8)):
        for gap in outcome.gaps:
            assert SETTINGS.finishing_interval <= gap <= SETTINGS.max_interval


# --- the queued stage -------------------------------------------------------------


def test_the_queued_stage_polls_rarely():
    rng = random.Random(3)
    timelines = [
        Timeline(30 * math.exp(rng.gauss(0, 0.35)), queue=rng.uniform(60, 300))
        for _ in range(200)
    ]
    outcomes = run(timelines)
    for timeline, outcome in zip(timelines, outcomes, strict=True):
        # never more often than POLL_QUEUED_INTERVAL while queued
        assert outcome.queued_polls <= timeline.queue / SETTINGS.queued_interval + 1
    per_minute = sum(o.queued_polls for o in outcomes) / sum(
        t.queue / 60 for t in timelines
    )
    assert per_minute <= 3.0  # a queued task costs a poll every 20 s or less
    assert statistics.mean(o.lateness for o in outcomes) <= 5.0


@pytest.mark.parametrize(("position", "wait"), [(1, 15), (2, 30), (40, 30)])
def test_a_queued_wait_grows_with_the_position(position, wait):
    progress = schedule.Progress()
    progress.observe(10.0, "queued", 0, position)
    waited = schedule.next_poll(MODEL, progress, schedule.Durations(), SETTINGS)
    assert waited == wait


# --- the pieces ------------------------------------------------------------------


def test_the_first_poll_cold_then_learned():
    durations = schedule.Durations()
    assert schedule.first_poll(MODEL, durations, SETTINGS) == 12.0  # 0.4 * 30 s
    fast = replace(SETTINGS, expected=1.0, first_delay=3.0)
    assert schedule.first_poll(MODEL, durations, fast) == 3.0  # POLL_FIRST_DELAY
    for i in range(100):
        durations.add(MODEL, 20.0 + i / 10)  # 20.0 .. 29.9 s
    assert 20.0 <= schedule.first_poll(MODEL, durations, SETTINGS) <= 20.6
    assert schedule.first_poll("other-model", durations, SETTINGS) == 12.0


def test_durations_need_enough_samples_and_stay_bounded():
    durations = schedule.Durations()
    for _ in range(schedule.SETTLED - 1):
        durations.add(MODEL, 10.0)
    assert durations.quantile(MODEL, 0.5) is None
    durations.add(MODEL, 10.0)
    assert durations.quantile(MODEL, 0.5) == 10.0
    for i in range(3 * schedule.SAMPLES):
        durations.add(MODEL, float(i))
    assert len(durations._samples[MODEL]) == schedule.SAMPLES


def test_remaining_time_follows_the_learned_durations():
    durations = schedule.Durations()
    assert durations.remaining(MODEL, 10.0, expected=30.0) == 20.0
    assert durations.remaining(MODEL, 40.0, expected=30.0) == 10.0  # overdue
    for i in range(40):
        durations.add(MODEL, 20.0 + i % 10)  # 20 .. 29 s
    assert 4.0 <= durations.remaining(MODEL, 20.5, expected=30.0) <= 5.0
    assert durations.remaining(MODEL, 60.0, expected=30.0) == 15.0


def test_growth_dates_images_midway_and_extrapolates_the_finish():
    progress = schedule.Progress(expected=4)
    progress.observe(10.0, "processing", 0, None)
    progress.observe(14.0, "finishing", 1, None)  # appeared between 10 and 14
    progress.observe(18.0, "finishing", 2, None)  # between 14 and 18
    assert progress.growth == [(12.0, 1), (16.0, 2)]
    # one image every 4 s: image 4 at 24 s (+ half an image of margin)
    eta = schedule._eta_from_growth(progress)
    assert eta == pytest.approx(16.0 + 2.5 * 4.0 - 18.0)
    assert schedule.next_poll(MODEL, progress, schedule.Durations(), SETTINGS) == (
        SETTINGS.finishing_interval
    )


def test_leaving_the_queue_starts_the_processing_clock():
    progress = schedule.Progress()
    progress.observe(30.0, "queued", 0, 3)
    assert progress.processing_since is None
    progress.observe(60.0, "processing", 0, None)
    assert progress.processing_since == 45.0  # midway between the two polls
    assert schedule._processing_age(progress) == 15.0
