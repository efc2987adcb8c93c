"""Smoke test of the benchmark harness: a tiny run against the real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_run_measures_without_failures(tmp_path):
    out = tmp_path / "results.json"
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "burst",
        "--quick",
        "--levels",
        "1,5",
        "--task-seconds",
        "0.5",
        "--sse-n",
        "3",
        "--b64-n",
        "3",
        "--server-env",
        "POLL_EXPECTED_SECONDS=1",
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    runs = {r["run"]: r for r in report["runs"]}
    assert set(runs) == {"c=1", "c=5", "sse c=3", "b64_json c=3"}
    for run in runs.values():
        assert run["failed"] == 0, (run["run"], run["failures"])
        assert run["ok"] == run["concurrency"]
        assert run["calls_per_generation"] > 0
        assert run["violations"] == 0, run["violation_samples"]
        assert run["added_latency_s"]["n"] == run["ok"]  # every response mapped
        assert run["peak_rss_mib"] > 0
    assert runs["sse c=3"]["sse_first_data_s"]["n"] == 3
    assert report["machine"]["nproc"] >= 1
    assert "| c=5 | 5 | 5 | 0 |" in done.stdout  # the Markdown table
