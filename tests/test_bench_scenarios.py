"""The benchmark package (bench/): its analysis, targets, report and plots on
recorded data, and one seconds-long real run of each scenario."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import analysis, profile, report, responses, targets
from bench.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "bench" / "testdata" / "realistic-tiny-recorded.json"


def recorded_run() -> dict:
    from bench.scenarios.base import replay  # imports gevent, patches nothing

    return replay(json.loads(RECORDED.read_text())[0])


def fake_report(runs: list[dict], scenario: str = "realistic") -> dict:
    return {
        "scenario": scenario,
        "command": "python -m bench test",
        "duration_s": 1.0,
        "machine": {"nproc": 2, "cpu_model": "cpu", "mem_gib": 1.0, "kernel": "k",
                    "python": "3", "versions": {}, "loadavg_at_start": ["0", "0", "0"]},
        "server": {"workers_running": 2, "config": {"POLL_MIN_INTERVAL": 1.0},
                   "extra_env": {}},
        "simulator": {"args": ["--task-seconds", "1"]},
        "runs": runs,
        "aggregate_keys": ["calls_per_generation", "sim_added_latency_sim_s.mean"],
    }  # fmt: skip


# ------------------------------------------------------------ recorded data
def test_replay_of_a_recorded_run_gives_its_figures():
    run = recorded_run()
    rec = json.loads(RECORDED.read_text())[0]
    assert run["ok"] == len(rec["items"]) and run["failed"] == 0
    assert run["added_latency_s"]["n"] == run["ok"]  # every response found its task
    assert run["sim_added_latency_s"]["n"] == run["ok"]
    calls = rec["stats"]["calls"]
    assert run["calls_per_generation"] == pytest.approx(sum(calls.values()) / run["ok"])
    by = run["calls_per_generation_by_endpoint"]
    assert by["generate"] == pytest.approx(1.0)
    assert run["charges"]["extra_tasks"] == 0
    assert run["charges"]["requests_with_a_task"] == run["ok"]
    scale = rec["time_scale"]
    real, sim = run["sim_added_latency_s"]["mean"], run["sim_added_latency_sim_s"]
    assert sim["mean"] == pytest.approx(real / scale)


def test_a_second_task_for_one_request_is_a_double_charge():
    rec = json.loads(RECORDED.read_text())[0]
    stats = copy.deepcopy(rec["stats"])
    hid, task = next(iter(stats["tasks"].items()))
    stats["tasks"][hid + "9"] = dict(task, submit_id="another")
    stats["duplicate_submit_ids"] = 1
    got = analysis.charges(rec["items"], stats)
    assert got["double_charged_requests"] == 1 and got["extra_tasks"] == 1
    run = {"charges": got}
    assert targets.DERIVED["double_charges"](run, {}) == 2


def test_classify_failures_of_every_kind():
    ok_body = json.dumps({"data": [{"url": "http://h/img/123/0.png"}]}).encode()
    res = {"error": None, "status": 200, "body": ok_body}
    assert responses.classify({"kind": "images", "res": res}) == (None, "123", 1)
    bad = {"error": None, "status": 502, "body": b'{"error": {"code": "upstream"}}'}
    assert responses.classify({"kind": "images", "res": bad})[0] == "HTTP 502 upstream"
    reset = {"error": "connection reset (body)", "status": None, "body": b""}
    assert responses.classify({"kind": "sse", "res": reset})[0].startswith("connection")
    stream = b'data: {"choices": []}\n\n'
    res = {"error": None, "status": 200, "body": stream}
    assert responses.classify({"kind": "sse", "res": res})[0].endswith("[DONE]")
    accepted = {"error": None, "status": 202, "body": b"{}"}
    lost = {"kind": "async", "res": accepted, "lost": "lost: task 404"}
    assert responses.classify(lost)[0] == "lost: task 404"
    task = {"object": "task", "status": "completed",
            "result": {"data": [{"url": "http://h/img/7/0.png"}]}}  # fmt: skip
    done = {"kind": "async", "res": accepted, "task": task}
    assert responses.classify(done) == (None, "7", 1)


def test_sse_first_event_and_keepalive_gaps():
    body = (
        b": keep-alive\n\ndata: {}\n\n: keep-alive\n\n: keep-alive\n\ndata: [DONE]\n\n"
    )
    ends = [end for end, _ in responses.sse_events(body)]
    arrivals = [(10.0 + i, n) for i, n in enumerate(ends)]
    got = responses.sse_timing({"body": body, "arrivals": arrivals, "t_start": 10.0,
                               "t_end": 20.0})  # fmt: skip
    assert got["first_data_s"] == pytest.approx(1.0)
    assert got["keepalives"] == 3
    assert got["keepalive_gaps"] == pytest.approx([2.0, 1.0])
    run = {"sse_keepalive_gap_s": analysis.summary(got["keepalive_gaps"])}
    assert targets.keepalive_error(run, {"SSE_KEEPALIVE_INTERVAL": 2.0}) == 0.5


def test_rss_trend_flat_and_growing():
    flat = [(t, 150.0 + (t % 3) * 0.1, 0) for t in range(100)]
    assert abs(analysis.rss_trend(flat)["growth_pct"]) < 1
    growing = [(t, 100.0 + t, 0) for t in range(100)]
    assert analysis.rss_trend(growing)["growth_pct"] > 50


def test_spread_targets_and_markdown():
    one = recorded_run()
    two = dict(one, calls_per_generation=one["calls_per_generation"] + 1.0)
    rep = fake_report([one, two])
    rep["aggregate"] = analysis.aggregate(rep["runs"], rep["aggregate_keys"])
    spread = rep["aggregate"][one["run"]]["calls_per_generation"]
    assert spread["n"] == 2 and spread["max"] - spread["min"] == pytest.approx(1.0)
    rep["targets"] = targets.evaluate(
        "realistic", rep["runs"], {"POLL_MIN_INTERVAL": 1}
    )
    calls = next(t for t in rep["targets"] if t["target"].startswith("upstream calls"))
    assert calls["measured"] == pytest.approx(spread["mean"])
    assert calls["met"] is (spread["mean"] <= 8)
    text = report.markdown(rep)
    assert "## Targets" in text and "## Spread over runs" in text
    assert f"| {one['run']} | {one['ok']} | 0 |" in text
    for name in SCENARIOS:  # every scenario has targets and a table
        assert targets.TARGETS[name] and name in report.TABLES


def test_zero_targets_judge_the_worst_run():
    runs = [{"run": "run 1", "lost_jobs": 0}, {"run": "run 2", "lost_jobs": 2}]
    row = next(
        t for t in targets.evaluate("restart", runs, {}) if "lost" in t["target"]
    )
    assert row["measured"] == 2 and row["met"] is False


def test_profile_collapse_counts_inclusive_and_self():
    raw = ("main (app.py:1);handle (h.py:3);send (requests/sessions.py:9) 6\n"
           "main (app.py:1);handle (h.py:4) 4\n")  # fmt: skip
    top = profile.top(raw)
    assert top["samples"] == 10
    inclusive = {x["frame"]: x["share"] for x in top["inclusive"]}
    assert inclusive["main (app.py)"] == 1.0
    assert inclusive["send (requests/sessions.py)"] == pytest.approx(0.6)
    assert {x["frame"]: x["share"] for x in top["self"]}["handle (h.py)"] == 0.4


def test_request_bodies_carry_the_tag_and_a_valid_reference():
    from bench.scenarios import base

    png = base.tiny_png(8)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in png
    edit = base.body_for("edits", "t1", n=2)
    assert edit["image"].startswith("data:image/png;base64,") and edit["n"] == 2
    raw = base.request_for(8000, "edits", "t1", "key", async_=True, idempotent=True)
    head = raw.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("POST /v1/images/edits ")
    assert "Prefer: respond-async" in head and "Idempotency-Key: bench-t1" in head
    chat = base.body_for("sse", "t2")
    assert (
        analysis.TAG_IN_PROMPT.search(chat["messages"][0]["content"]).group(1) == "t2"
    )


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from bench import plots

    made = plots.plot_report(fake_report([recorded_run()]), tmp_path / "r")
    assert [Path(p).name for p in made] == ["r-latency.png", "r-calls.png", "r-rss.png"]
    assert all(Path(p).read_bytes().startswith(b"\x89PNG") for p in made)


# ------------------------------------------------------------ real, tiny runs
@pytest.mark.server
def test_tiny_real_run_of_every_scenario(tmp_path):
    """Each scenario for a few seconds against the real server and simulator,
    the four in parallel (the cores are shared: the figures mean nothing)."""
    procs = {}
    for name, module in SCENARIOS.items():
        cmd = [sys.executable, "-m", "bench", name, *module.TINY, "--out",
               str(tmp_path / f"{name}.json")]  # fmt: skip
        procs[name] = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    deadline = time.monotonic() + 150
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
        assert proc.returncode == 0, (name, err[-3000:])
        assert "## Targets" in out
        rep = json.loads((tmp_path / f"{name}.json").read_text())
        assert (tmp_path / f"{name}.md").read_text().startswith(f"# Scenario `{name}`")
        assert len(list(tmp_path.glob(f"{name}-*.png"))) == 3
        assert rep["targets"], name
        for run in rep["runs"]:
            assert run["violations"] == 0, (name, run["violation_samples"])
            assert run["charges"]["extra_tasks"] == 0, (name, run["charges"])
            assert not run["charges"]["duplicate_submit_ids"], name
    runs = {n: json.loads((tmp_path / f"{n}.json").read_text())["runs"] for n in procs}
    assert {r["run"] for r in runs["burst"]} == {
        "c=1",
        "c=5",
        "sse c=3",
        "b64_json c=3",
    }
    assert all(r["failed"] == 0 for r in runs["burst"])
    assert runs["burst"][2]["sse_first_data_s"]["n"] == 3
    real = runs["realistic"][0]
    assert real["ok"] == 6 and real["sim_added_latency_s"]["n"] == 6
    assert real["accounts_polled"] == 2
    assert runs["soak"][0]["requests"] > 10 and "rss_trend" in runs["soak"][0]
    restart = runs["restart"][0]
    assert restart["restarts"] and restart["accepted"] >= 6
    assert restart["lost_jobs"] == 0 and restart["extra_submits"] == 0
