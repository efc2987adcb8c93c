"""Batch polls: history_ids and submit_ids mixed in one call = one poll; per
session call counts (``history_calls_by_session``); per task poll counts."""

from __future__ import annotations

from simulator.testing import SimClient

HISTORY = "/mweb/v1/get_history_by_ids"


def _submit(client: SimClient) -> tuple[str, str]:
    aigc = client.generate()["data"]["aigc_data"]
    return aigc["history_record_id"], aigc["task"]["submit_id"]


def test_mixed_ids_in_one_call_are_one_poll(client) -> None:
    (h1, s1), (h2, s2), (h3, _) = (_submit(client) for _ in range(3))
    body = client.call(HISTORY, {"history_ids": [h1, h3], "submit_ids": [s2, s1]})
    assert body["ret"] == "0"
    assert set(body["data"]) == {h1, h3, s2, s1}
    assert body["data"][s1]["history_record_id"] == h1
    assert body["data"][s2]["history_record_id"] == h2
    assert body["data"][s1] == body["data"][h1]  # one record per task and call
    stats = client.stats()
    assert stats["polls"] == 1 and stats["calls"]["history"] == 1
    assert stats["history_calls_by_session"] == {"sim-session-1": 1}
    polls = {hid: stats["tasks"][hid]["polls"] for hid in (h1, h2, h3)}
    assert polls == {h1: 1, h2: 1, h3: 1}  # h1 asked twice, counted once


def test_history_calls_counted_per_session(client, sim) -> None:
    ids = [client.submit() for _ in range(3)]
    with SimClient(sim.base_url, session="account-b") as other:
        other_ids = [other.submit() for _ in range(2)]
        for _tick in range(4):  # one batch call per account per tick
            assert set(client.history(ids)["data"]) == set(ids)
            assert set(other.history(other_ids)["data"]) == set(other_ids)
        assert other.history(ids)["data"] == {}  # another account's ids: absent
    stats = client.stats()
    assert stats["history_calls_by_session"] == {"sim-session-1": 4, "account-b": 5}
    assert stats["polls"] == 9
    assert all(stats["tasks"][hid]["polls"] == 4 for hid in ids + other_ids)


def test_refused_history_calls_are_not_counted(client) -> None:
    client.history(["1"], session="invalid-x")
    client.history(["1"], headers={"Sign": "bad"})
    assert client.stats()["history_calls_by_session"] == {}


def test_a_hundred_ids_in_one_call(client) -> None:
    client.configure(initial_credits=1000, task_seconds=0.01)
    ids = [client.submit(gen_count=1) for _ in range(100)]
    client.sim("clock", {"advance": 10})
    data = client.history(ids)["data"]
    assert len(data) == 100 and all(r["status"] == 50 for r in data.values())
    assert client.stats()["polls"] == 1
