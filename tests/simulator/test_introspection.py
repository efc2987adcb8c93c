"""/__sim/ endpoints, settings (CLI flags, JSON updates) and in-process helpers."""

from __future__ import annotations

import argparse

import pytest
import requests

from jimeng_api.simulator import SimSettings, create_simulator, run_simulator_in_thread
from jimeng_api.simulator.settings import add_arguments, from_namespace
from jimeng_api.simulator.testing import SimClient


def test_stats_shape_and_reset(client) -> None:
    hid = client.submit()
    client.history([hid])
    client.call("/mweb/v1/aigc_draft/generate", {}, session="")
    stats = client.stats()
    for key in (
        "calls",
        "submissions",
        "polls",
        "faults",
        "credits",
        "violations",
        "rejections",
        "tasks",
        "mean_task_seconds",
        "settings",
        "now",
    ):
        assert key in stats
    assert stats["calls"] == {"generate": 2, "history": 1}
    assert (stats["submissions"], stats["polls"]) == (1, 1)
    assert stats["rejections"][-1]["ret"] == "1015"
    task = stats["tasks"][hid]
    assert {"planned_seconds", "created", "finished", "status"} <= set(task)
    assert (
        "tasks"
        not in client.http.get(
            client.base_url + "/__sim/stats?tasks=0", timeout=5
        ).json()
    )
    assert client.sim("reset", {}) == {"ok": True}
    stats = client.stats()
    assert stats["calls"] == {} and stats["tasks"] == {} and stats["credits"] == {}


def test_reset_keeps_or_restores_settings(client) -> None:
    client.configure(task_seconds=9)
    client.sim("reset", {})
    assert client.sim("config")["task_seconds"] == 9
    client.sim("reset", {"restore_settings": True})
    assert client.sim("config")["task_seconds"] == 0.5


def test_task_endpoint(client) -> None:
    hid = client.submit()
    assert client.sim(f"tasks/{hid}")["submit_id"]
    response = client.http.get(client.base_url + "/__sim/tasks/1", timeout=5)
    assert response.status_code == 404


def test_credits_and_clock_endpoints(client) -> None:
    account = client.sim("credits", {"session": "s1", "purchase_credit": 7})
    assert account == {
        "vip_credit": 0,
        "gift_credit": 100,
        "purchase_credit": 7,
        "total": 107,
    }
    before = client.sim("clock")["now"]
    after = client.sim("clock", {"advance": 3600})["now"]
    assert 3599 < after - before < 3700


def test_unknown_path_404(client) -> None:
    assert (
        client.http.post(client.base_url + "/mweb/v1/nope", timeout=5).status_code
        == 404
    )
    assert client.stats()["calls"]["unknown"] == 1


def test_settings_cli_flags() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(
        [
            "--task-seconds",
            "2.5",
            "--no-strict",
            "--min-appvr",
            "8.0.0",
            "--blocked-words",
            "a,b",
            "--fault-http-5xx",
            "0.1",
            "--seed",
            "3",
            "--fault-scope",
            "generate,history",
            "--legacy-credits",
        ]
    )
    settings = from_namespace(ns)
    assert settings.task_seconds == 2.5 and settings.strict is False
    assert settings.min_appvr == "8.0.0" and settings.blocked_words == ["a", "b"]
    assert settings.fault_http_5xx == 0.1 and settings.seed == 3
    assert settings.fault_scope == ["generate", "history"]
    assert settings.legacy_credits is True
    assert from_namespace(parser.parse_args([])) == SimSettings()


def test_settings_update_validates() -> None:
    settings = SimSettings()
    settings.update({"strict": "false", "min_appvr": None, "initial_credits": "5"})
    assert settings.strict is False and settings.initial_credits == 5
    for bad in (
        {"fault_slow": 1.5},
        {"strict": "maybe"},
        {"nope": 1},
        {"task_seconds": None},
        {"blocked_words": [1]},
    ):
        with pytest.raises(ValueError):
            settings.update(bad)


def test_in_process_helpers() -> None:
    app = create_simulator(SimSettings(strict=False))
    assert app.settings.strict is False and app.state.stats()["submissions"] == 0
    with run_simulator_in_thread(SimSettings(task_seconds=0.1)) as running:
        assert running.base_url.startswith("http://127.0.0.1:")
        with SimClient(running.base_url) as c:
            assert c.sim("health") == {"ok": True}
            c.submit()
        assert running.state.submissions == 1
        assert running.settings.task_seconds == 0.1
    with pytest.raises(requests.ConnectionError):
        requests.get(running.base_url + "/__sim/health", timeout=2)
