"""/__sim/ endpoints, settings (CLI flags, JSON updates) and in-process helpers."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from simulator import SimSettings, create_simulator, run_simulator_in_thread
from simulator.settings import add_arguments, from_namespace
from simulator.testing import SimClient


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


def test_new_knobs_from_cli_flags() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {
        "--time-scale": "0.01",
        "--duration-model": "lognormal",
        "--task-sigma": "0.7",
        "--queue-seconds": "120",
        "--stall-rate": "0.1",
        "--stall-seconds": "30",
        "--partial-fail-rate": "0.05",
        "--partial-fail-codes": "1017",
        "--final-without-items-rate": "0.2",
        "--parallel-limit-ret": "1010",
        "--retired-models": "a,b",
        "--site-origin": "https://relay.example",
        "--image-size": "128",
    }
    settings = from_namespace(
        parser.parse_args([x for kv in flags.items() for x in kv])
    )
    assert settings.time_scale == 0.01 and settings.duration_model == "lognormal"
    assert settings.task_sigma == 0.7 and settings.queue_seconds == 120
    assert (settings.stall_rate, settings.stall_seconds) == (0.1, 30)
    assert settings.partial_fail_rate == 0.05
    assert settings.partial_fail_codes == ["1017"]
    assert settings.final_without_items_rate == 0.2
    assert settings.parallel_limit_ret == "1010"
    assert settings.retired_models == ["a", "b"]
    assert settings.site_origin == "https://relay.example"
    assert settings.image_size == 128


def test_new_knob_defaults_keep_the_old_behaviour() -> None:
    s = SimSettings()
    assert (s.time_scale, s.duration_model, s.queue_seconds) == (1.0, "uniform", 0)
    assert (s.stall_rate, s.partial_fail_rate, s.final_without_items_rate) == (0,) * 3
    assert s.stall_seconds is None and s.task_sigma == 0.5
    assert s.max_running_per_session == 0 and s.parallel_limit_ret == "1310"
    assert s.site_origin == "https://jimeng.jianying.com"
    assert "dreamina_ic_generate_video_model_vgfm_3.5_pro" in s.retired_models
    assert s.image_size == 256


@pytest.mark.parametrize(
    "bad",
    [
        {"duration_model": "gaussian"},
        {"time_scale": -1},
        {"task_sigma": -0.1},
        {"queue_seconds": -5},
        {"stall_rate": 1.5},
        {"partial_fail_rate": -0.1},
        {"final_without_items_rate": 2},
        {"parallel_limit_ret": "429"},
        {"stall_seconds": -1},
        {"image_size": 4},
    ],
)
def test_new_knobs_validated(client, bad) -> None:
    response = client.http.post(client.base_url + "/__sim/config", json=bad, timeout=5)
    assert response.status_code == 400
    with pytest.raises(ValueError):
        SimSettings().update(bad)


def test_config_endpoint_changes_new_knobs(client) -> None:
    config = client.configure(
        time_scale=0.5, stall_seconds=None, parallel_limit_ret=1010
    )
    assert config["time_scale"] == 0.5 and config["stall_seconds"] is None
    assert config["parallel_limit_ret"] == "1010"


def test_stats_have_history_calls_by_session(client) -> None:
    client.history(["1"])
    assert client.stats()["history_calls_by_session"] == {"sim-session-1": 1}


def test_simulator_imports_nothing_from_the_product() -> None:
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, simulator, simulator.testing, simulator.__main__ as m; "
        "bad = [n for n in sys.modules if n.split('.')[0] == 'jimeng_api']; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)
    for path in (root / "simulator").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert not (node.module or "").startswith("jimeng_api"), path
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("jimeng_api") for a in node.names)
