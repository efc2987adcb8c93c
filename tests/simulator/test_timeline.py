"""get_history_by_ids: status timeline, items one by one, blocked words, keys."""

from __future__ import annotations

import time

from simulator.testing import SimClient


def _record(client: SimClient, hid: str) -> dict:
    return client.history([hid])["data"][hid]


def _at(client: SimClient, seconds: float) -> None:
    client.sim("clock", {"advance": seconds})


def test_timeline_driven_by_the_clock(client) -> None:
    # 100 s task, no jitter: 20 for 25 s, 42 until 40 s, 45 until 100 s, then 50.
    client.configure(task_seconds=100, task_jitter=0)
    hid = client.submit(gen_count=4)
    seen = []
    for step in (0, 10, 10, 15, 6, 15, 15, 15, 13, 1, 10):
        _at(client, step)
        rec = _record(client, hid)
        assert rec["status"] == rec["task"]["status"]
        assert isinstance(rec["status"], int) and isinstance(rec["fail_code"], str)
        assert rec["finished_image_count"] == len(rec["item_list"])
        assert rec["total_image_count"] == 4
        seen.append((rec["status"], len(rec["item_list"])))
    assert seen == [
        (20, 0),
        (20, 0),
        (20, 0),
        (42, 0),  # t = 0, 10, 20, 35
        (45, 0),
        (45, 1),
        (45, 2),
        (45, 3),
        (45, 3),  # t = 41, 56, 71, 86, 99
        (50, 4),
        (50, 4),  # t = 100, 110
    ]
    done = _record(client, hid)
    assert done["task"]["finish_time"] > 0


def test_timeline_in_real_time_ends_with_all_images(client) -> None:
    hid = client.submit(gen_count=4)
    statuses, counts = [], []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rec = _record(client, hid)
        statuses.append(rec["status"])
        counts.append(len(rec["item_list"]))
        if rec["status"] == 50:
            break
        time.sleep(0.02)
    order = {20: 0, 42: 1, 45: 2, 50: 3}
    assert statuses[-1] == 50 and counts[-1] == 4
    assert [order[s] for s in statuses] == sorted(order[s] for s in statuses)
    assert counts == sorted(counts)


def test_items_shape(client) -> None:
    hid = client.submit("a red fox", gen_count=2)
    record = client.wait(hid)
    item_ids = set()
    for item in record["item_list"]:
        url = item["image"]["large_images"][0]["image_url"]
        assert url.startswith(client.base_url + f"/img/{hid}/")
        assert "x-expires=" in url and "x-signature=" in url
        assert item["common_attr"]["cover_url"].startswith(client.base_url)
        assert item["common_attr"]["description"] == "a red fox"
        item_ids.add(item["common_attr"]["id"])
    assert len(item_ids) == 2


def test_blocked_word_fails_with_2038(client) -> None:
    client.configure(task_seconds=100, task_jitter=0)
    hid = client.submit("a BlockedWord in the prompt")
    first = _record(client, hid)
    assert first["status"] == 20
    _at(client, 30)
    rec = _record(client, hid)
    assert (rec["status"], rec["task"]["status"], rec["fail_code"]) == (30, 30, "2038")
    assert rec["item_list"] == []


def test_blocked_words_configurable(client) -> None:
    client.configure(blocked_words=["dragon"])
    assert client.wait(client.submit("a dragon"))["fail_code"] == "2038"
    assert client.wait(client.submit("违禁 text"))["status"] == 50


def test_submit_ids_keyed_by_submit_id(client) -> None:
    result = client.generate()
    submit_id = result["data"]["aigc_data"]["task"]["submit_id"]
    body = client.history([submit_id], key="submit_ids")
    assert list(body["data"]) == [submit_id]


def test_unknown_and_foreign_ids_absent(client, sim) -> None:
    hid = client.submit()
    body = client.history([hid, "123456789"])
    assert list(body["data"]) == [hid]
    with SimClient(sim.base_url, session="other-session") as other:
        assert other.history([hid])["data"] == {}


def test_bad_history_bodies(client) -> None:
    path = "/mweb/v1/get_history_by_ids"
    assert client.call(path, {"history_ids": [123]})["ret"] == "1000"
    assert client.call(path, {})["ret"] == "1000"
    assert client.call(path, [])["ret"] == "1002"


def test_stats_expose_planned_task_time(client) -> None:
    client.configure(task_seconds=2.0, task_jitter=0.25)
    ids = [client.submit() for _ in range(3)]
    stats = client.stats()
    assert stats["submissions"] == 3
    for hid in ids:
        task = stats["tasks"][hid]
        assert 1.5 <= task["planned_seconds"] <= 2.5
        elapsed = task["finished"] - task["created"]
        assert abs(elapsed - task["planned_seconds"]) < 1e-3
    assert 1.5 <= stats["mean_task_seconds"] <= 2.5
