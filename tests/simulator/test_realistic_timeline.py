"""Realistic timelines: time_scale, lognormal durations, the queue phase, stalls,
partial failures, finals without item_list, per-task latency stats."""

from __future__ import annotations

import math
import statistics
import time

import pytest

from simulator import SimSettings, create_simulator
from simulator.testing import SimClient


def _record(client: SimClient, hid: str) -> dict:
    return client.history([hid])["data"][hid]


def _at(client: SimClient, seconds: float) -> None:
    client.sim("clock", {"advance": seconds})


def _task(client: SimClient, hid: str) -> dict:
    return client.sim(f"tasks/{hid}")


# -- durations ------------------------------------------------------------------
def test_lognormal_durations_have_the_median_and_spread() -> None:
    app = create_simulator(
        SimSettings(duration_model="lognormal", task_seconds=30, task_sigma=0.5, seed=1)
    )
    samples = [app.state.planned_duration() for _ in range(4000)]
    assert 27 < statistics.median(samples) < 33
    logs = [math.log(s) for s in samples]
    assert 0.45 < statistics.pstdev(logs) < 0.55
    assert max(samples) > 2 * 30  # a long tail, unlike uniform ± jitter


def test_uniform_durations_stay_within_the_jitter() -> None:
    app = create_simulator(SimSettings(task_seconds=10, task_jitter=0.2, seed=2))
    samples = [app.state.planned_duration() for _ in range(500)]
    assert 8 <= min(samples) and max(samples) <= 12


def test_time_scale_multiplies_every_duration() -> None:
    settings = SimSettings(
        task_seconds=30, task_jitter=0, queue_seconds=600, time_scale=0.01, seed=3
    )
    app = create_simulator(settings)
    assert app.state.planned_duration() == pytest.approx(0.3)
    waits = [app.state.planned_queue()[0] for _ in range(3000)]
    assert 5.4 < statistics.mean(waits) < 6.6  # exponential, mean 600 s × 0.01
    settings.update({"stall_rate": 1, "stall_seconds": 40})
    assert app.state.planned_fate(4, False)[2] == pytest.approx(0.4)


def test_time_scale_runs_a_realistic_timeline_fast(client) -> None:
    client.configure(
        task_seconds=30, task_jitter=0, queue_seconds=40, time_scale=0.01, seed=11
    )
    started = time.monotonic()
    hid = client.submit(gen_count=4)
    record = client.wait(hid, deadline=10, interval=0.01)
    elapsed = time.monotonic() - started
    task = _task(client, hid)
    assert record["status"] == 50 and len(record["item_list"]) == 4
    assert task["processing_seconds"] == pytest.approx(0.3)
    assert task["planned_seconds"] == pytest.approx(
        task["queue_seconds"] + 0.3, abs=1e-6
    )
    assert task["planned_seconds"] - 0.05 < elapsed < task["planned_seconds"] + 3


# -- the queue phase --------------------------------------------------------------
def test_queue_phase_counts_down_then_processing_as_before(client) -> None:
    client.configure(task_seconds=100, task_jitter=0, queue_seconds=300, seed=5)
    hid = client.submit(gen_count=4)
    task = _task(client, hid)
    wait = task["queue_seconds"]
    assert wait > 0 and task["queue_end"] == pytest.approx(task["created"] + wait)
    seen = []
    for fraction in (0.0, 0.3, 0.6, 0.999):
        target = task["created"] + wait * fraction
        client.sim("clock", {"set": target})
        rec = _record(client, hid)
        assert (rec["status"], rec["task"]["status"]) == (20, 20)
        assert rec["item_list"] == []
        info = rec["queue_info"]
        assert set(info) == {"queue_idx", "priority", "queue_status", "queue_length"}
        assert all(isinstance(v, int) for v in info.values())
        assert 0 <= info["queue_idx"] <= info["queue_length"]
        seen.append(info["queue_idx"])
    position = task["queue_position"]
    assert position >= 2 and task["queue_length"] >= position
    assert seen == sorted(seen, reverse=True) and seen[0] > seen[-1]
    assert seen[0] in (position, position - 1) and seen[-1] == 0
    start = task["queue_end"]
    expected = [(1, 20, 0), (30, 42, 0), (56, 45, 1), (99, 45, 3), (100.5, 50, 4)]
    for offset, status, count in expected:
        client.sim("clock", {"set": start + offset})
        rec = _record(client, hid)
        assert "queue_info" not in rec
        assert (rec["status"], len(rec["item_list"])) == (status, count)


def test_no_queue_info_without_a_queue(client) -> None:
    hid = client.submit()
    assert "queue_info" not in _record(client, hid)
    assert _task(client, hid)["queue_seconds"] == 0


def test_blocked_prompt_skips_the_queue(client) -> None:
    client.configure(task_seconds=100, task_jitter=0, queue_seconds=1000)
    hid = client.submit("a blockedword")
    assert "queue_info" not in _record(client, hid)
    _at(client, 26)
    assert _record(client, hid)["fail_code"] == "2038"


def test_records_carry_created_time_and_credits_consume(client) -> None:
    result = client.generate()
    aigc = result["data"]["aigc_data"]
    hid = aigc["history_record_id"]
    client.configure(generation_cost=2, cost_per_image=True)
    hid3 = client.submit(gen_count=3)
    _at(client, 60)
    rec = _record(client, hid)
    assert isinstance(rec["created_time"], float)
    assert rec["created_time"] == aigc["created_time"]
    assert abs(rec["created_time"] - _task(client, hid)["created"]) < 1e-2
    consumed = [i["extra"]["credits_consume"] for i in rec["item_list"]]
    assert consumed == [1, 0, 0, 0]  # a flat cost of 1 over 4 images
    consumed3 = [
        i["extra"]["credits_consume"] for i in _record(client, hid3)["item_list"]
    ]
    assert consumed3 == [2, 2, 2]


# -- stalls, partial failures, finals without item_list ----------------------------
def test_stall_forever_keeps_k_of_n_images(client) -> None:
    client.configure(task_seconds=100, task_jitter=0, stall_rate=1.0)
    hid = client.submit(gen_count=4)
    task = _task(client, hid)
    k = task["images_expected"]
    assert task["fate"] == "stall" and 1 <= k <= 3 and task["stop_at"] == k
    assert task["finished"] is None and task["planned_seconds"] is None
    for step in (200, 10_000, 1_000_000):
        _at(client, step)
        rec = _record(client, hid)
        assert (rec["status"], len(rec["item_list"])) == (45, k)
        assert rec["finished_image_count"] == k and rec["total_image_count"] == 4
        assert rec["task"]["finish_time"] == 0
    assert client.stats()["mean_task_seconds"] is None


def test_stall_seconds_then_the_task_finishes(client) -> None:
    client.configure(task_seconds=100, task_jitter=0, stall_rate=1, stall_seconds=50)
    hid = client.submit(gen_count=4)
    task = _task(client, hid)
    assert task["planned_seconds"] == pytest.approx(150)
    assert task["images_expected"] == 4
    k = task["stop_at"]
    assert 1 <= k <= 3
    client.sim("clock", {"set": task["created"] + 40 + 15 * k + 49})
    rec = _record(client, hid)  # image k + 1 is 50 s late
    assert (rec["status"], len(rec["item_list"])) == (45, k)
    client.sim("clock", {"set": task["created"] + 149})
    rec = _record(client, hid)
    assert (rec["status"], len(rec["item_list"])) == (45, 3)
    _at(client, 2)
    rec = _record(client, hid)
    assert (rec["status"], len(rec["item_list"])) == (50, 4)


def test_stall_with_one_image_stays_empty(client) -> None:
    client.configure(task_seconds=10, task_jitter=0, stall_rate=1)
    hid = client.submit(gen_count=1)
    _at(client, 1000)
    rec = _record(client, hid)
    assert (rec["status"], rec["item_list"]) == (45, [])


def test_partial_failure_ends_in_30_with_some_images(client) -> None:
    client.configure(
        task_seconds=100, task_jitter=0, partial_fail_rate=1, partial_fail_codes="1017"
    )
    hid = client.submit(gen_count=4)
    task = _task(client, hid)
    k = task["images_expected"]
    assert task["fate"] == "partial_fail" and 1 <= k <= 3
    _at(client, 100)
    rec = _record(client, hid)
    assert (rec["status"], rec["task"]["status"], rec["fail_code"]) == (30, 30, "1017")
    assert len(rec["item_list"]) == rec["finished_image_count"] == k
    assert rec["task"]["finish_time"] > 0
    url = rec["item_list"][0]["image"]["large_images"][0]["image_url"]
    assert client.http.get(url, timeout=5).status_code == 200


def test_partial_failure_codes_are_drawn_from_the_list(client) -> None:
    client.configure(partial_fail_rate=1, partial_fail_codes=["1017", "2038"], seed=4)
    client.configure(initial_credits=1000)
    codes = {_task(client, client.submit(gen_count=2))["fail_code"] for _ in range(30)}
    assert codes == {"1017", "2038"}


def test_single_image_tasks_never_partially_fail(client) -> None:
    client.configure(partial_fail_rate=1)
    assert client.wait(client.submit(gen_count=1))["status"] == 50


def test_final_without_items_only_on_the_first_final_poll(client) -> None:
    client.configure(task_seconds=10, task_jitter=0, final_without_items_rate=1)
    hid = client.submit(gen_count=2)
    assert "item_list" in _record(client, hid)  # pending polls are normal
    _at(client, 11)
    first = _record(client, hid)
    assert first["status"] == 50 and "item_list" not in first
    assert first["finished_image_count"] == 2
    second = _record(client, hid)
    assert second["status"] == 50 and len(second["item_list"]) == 2
    task = _task(client, hid)
    assert task["final_seen_at"] < task["final_polled_at"]
    assert task["polls"] == 3


# -- per-task stats for latency -----------------------------------------------------
def test_task_stats_give_the_timeline_and_the_added_latency(client) -> None:
    client.configure(task_seconds=100, task_jitter=0, queue_seconds=60, seed=9)
    hid = client.submit(gen_count=4)
    task = _task(client, hid)
    start = task["queue_end"]
    assert task["first_image_at"] == pytest.approx(start + 40 + 15)
    assert task["last_image_at"] == pytest.approx(start + 100)
    assert task["finished"] == pytest.approx(start + 100)
    assert task["polls"] == 0 and task["added_latency"] is None
    _record(client, hid)
    client.sim("clock", {"set": start + 100 + 2.5})
    _record(client, hid)
    _record(client, hid)
    task = _task(client, hid)
    assert task["polls"] == 3
    assert task["first_polled_at"] < task["final_polled_at"] < task["last_polled_at"]
    assert task["added_latency"] == pytest.approx(2.5, abs=0.05)
    stats_task = client.stats()["tasks"][hid]
    assert stats_task["added_latency"] == task["added_latency"]


def test_partial_failure_stats(client) -> None:
    client.configure(task_seconds=100, task_jitter=0, partial_fail_rate=1)
    hid = client.submit(gen_count=4)
    task = _task(client, hid)
    k = task["images_expected"]
    assert task["last_image_at"] == pytest.approx(task["created"] + 40 + 15 * k)
    assert task["finished"] == pytest.approx(task["created"] + 40 + 15 * (k + 1))
