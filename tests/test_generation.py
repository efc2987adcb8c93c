"""The poll schedule: learned task times put polls where the images are due."""

from __future__ import annotations

import time

from jimeng_api.extensions import get_generator
from jimeng_api.generation import Job, TaskTimes


def test_no_window_before_any_sample():
    assert TaskTimes().window("m") is None


def test_window_starts_early_with_few_samples_and_tightens_with_many():
    times = TaskTimes()
    times.add("m", 5.0)
    early, late = times.window("m")
    assert early <= 5.0 * 0.8 and late == 5.0
    for i in range(60):
        times.add("m", 4.0 + (i % 20) / 10)  # 4.0 .. 5.9 s
    early, late = times.window("m")
    assert 3.9 <= early <= 4.2 and 5.7 <= late <= 5.9
    assert times.settled("m")


def make_job(started: float) -> Job:
    return Job("t", "h", "jimeng-4.0", None, started, started + 600, accepted=started)


def test_first_poll_waits_for_the_learned_window(app):
    app.config.update(POLL_ADAPTIVE=True, POLL_FIRST_DELAY=3.0, POLL_INTERVAL=1.0)
    with app.app_context():
        generator = get_generator()
    job = make_job(time.monotonic())
    assert 2.9 < generator._delay(job, 0) <= 3.0  # cold: POLL_FIRST_DELAY
    for _ in range(40):
        generator.times.add("jimeng-4.0", 20.0)
    assert 19.0 < generator._delay(job, 0) <= 20.0  # learned: near the finish


def test_polls_spread_across_a_settled_window_then_slow_down(app):
    app.config.update(POLL_ADAPTIVE=True, POLL_INTERVAL=1.0, POLL_MAX_INTERVAL=5.0)
    with app.app_context():
        generator = get_generator()
    for i in range(40):
        generator.times.add("jimeng-4.0", 10.0 + (i % 10) * 0.2)  # 10 .. 11.8 s
    inside = make_job(time.monotonic() - 10.5)
    assert generator._delay(inside, 1) < 1.0  # about four polls across the window
    overdue = make_job(time.monotonic() - 100.0)
    assert generator._delay(overdue, 12) == 5.0  # an unusually long task


def test_a_finished_task_teaches_its_duration_not_our_lag(app, upstream):
    upstream.submitted("h1")
    upstream.record("h1", 20)
    upstream.record("h1", 50, ["https://p9.byteimg.com/a.png"])
    client = app.test_client()
    response = client.post(
        "/v1/images/generations",
        json={"prompt": "x"},
        headers={"Authorization": "Bearer s"},
    )
    assert response.status_code == 200
    with app.app_context():
        window = get_generator().times.window("jimeng-3.0")
    assert window is not None and window[1] < 1.0
