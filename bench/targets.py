"""Issue 19's targets, checked against a scenario's runs.

A figure that must be 0 (failures, double charges, lost jobs) is judged on the
worst run; every other figure on the mean over the runs, with the range shown.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .analysis import dig, spread

OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "==": operator.eq}


@dataclass(frozen=True)
class Target:
    name: str
    path: str  # a dotted key of a run, or a callable's name in DERIVED
    op: str
    limit: float
    run: str | None = None  # only the runs with this label (burst: "c=2000")
    stretch: float | None = None
    worst: bool = False  # judge the worst run (zero targets), not the mean
    unit: str = ""


def keepalive_error(run: dict[str, Any], config: dict[str, Any]) -> float | None:
    """Largest relative difference between the keep-alive gaps and the setting."""
    gaps = run.get("sse_keepalive_gap_s") or {}
    interval = config.get("SSE_KEEPALIVE_INTERVAL")
    if not gaps.get("n") or not interval:
        return None
    worst = max(abs(gaps["min"] - interval), abs(gaps["max"] - interval))
    return worst / interval


def batching_excess(run: dict[str, Any], config: dict[str, Any]) -> float | None:
    """History calls per account per POLL_MIN_INTERVAL (≤ 1 when batched)."""
    rate = run.get("history_calls_per_account_s_max")
    if rate is None:
        return None
    return rate * max(config.get("POLL_MIN_INTERVAL") or 1.0, 1e-3)


DERIVED: dict[str, Callable[[dict[str, Any], dict[str, Any]], float | None]] = {
    "keepalive_error": keepalive_error,
    "batching": batching_excess,
    "double_charges": lambda r, c: (
        (r["charges"]["extra_tasks"] or 0) + (r["charges"]["duplicate_submit_ids"] or 0)
    ),
    "rss_growth": lambda r, c: (r.get("rss_trend") or {}).get("growth_pct"),
}

TARGETS: dict[str, list[Target]] = {
    "realistic": [
        Target(
            "upstream calls per generation", "calls_per_generation", "<=", 8, stretch=6
        ),
        Target(
            "mean added latency, simulator (last image → delivering poll), simulated s",
            "sim_added_latency_sim_s.mean",
            "<=",
            1.0,
            unit="s",
        ),
        Target(
            "mean added latency, client (end-to-end − task time), simulated s",
            "added_latency_sim_s.mean",
            "<=",
            1.0,
            unit="s",
        ),
        Target(
            "polls batched: history calls per account per POLL_MIN_INTERVAL",
            "batching",
            "<=",
            1.0,
        ),
        Target("failed generations", "failed", "==", 0, worst=True),
    ],
    "burst": [
        Target("c=2000 failures", "failed", "==", 0, run="c=2000", worst=True),
        Target(
            "c=2000 mean added latency",
            "added_latency_s.mean",
            "<=",
            1.0,
            run="c=2000",
            unit="s",
        ),
        Target(
            "c=2000 proxy CPU per generation",
            "proxy_cpu_ms_per_generation",
            "<=",
            2.5,
            run="c=2000",
            unit="ms",
        ),
        Target("c=2000 peak RSS", "peak_rss_mib", "<=", 250, run="c=2000", unit="MiB"),
        Target(
            "SSE time to the first data event, p99",
            "sse_first_data_s.p99",
            "<=",
            0.050,
            run="sse",
            unit="s",
        ),
        Target(
            "SSE keep-alive gaps vs SSE_KEEPALIVE_INTERVAL (relative error)",
            "keepalive_error",
            "<=",
            0.2,
            run="sse",
        ),
    ],
    "soak": [
        Target(
            "RSS growth (last tenth vs the tenth after warm-up)",
            "rss_growth",
            "<=",
            10,
            unit="%",
        ),
        Target(
            "double charges (extra tasks + resent submit ids)",
            "double_charges",
            "==",
            0,
            worst=True,
        ),
        Target("lost jobs", "lost_jobs", "==", 0, worst=True),
    ],
    "restart": [
        Target("lost jobs", "lost_jobs", "==", 0, worst=True),
        Target(
            "extra submits (submissions − jobs accepted, + resent ids)",
            "extra_submits",
            "==",
            0,
            worst=True,
        ),
    ],
}


def _value(run: dict[str, Any], target: Target, config: dict[str, Any]) -> Any:
    if target.path in DERIVED:
        return DERIVED[target.path](run, config)
    return dig(run, target.path)


def _select(runs: list[dict[str, Any]], label: str | None) -> list[dict[str, Any]]:
    if label is None:
        return runs
    if label == "sse":
        return [r for r in runs if r.get("kind") == "sse"]
    return [r for r in runs if r["run"] == label]


def evaluate(
    scenario: str, runs: list[dict[str, Any]], config: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per target: measured (mean or worst), range, met / missed / n/a."""
    rows = []
    for target in TARGETS.get(scenario, []):
        chosen = _select(runs, target.run)
        values = [_value(r, target, config) for r in chosen]
        s = spread(values)
        if not s["n"]:
            measured = None
        elif target.worst:
            measured = s["max"]
        else:
            measured = s["mean"]
        met = None if measured is None else OPS[target.op](measured, target.limit)
        stretch = None
        if target.stretch is not None and measured is not None:
            stretch = OPS[target.op](measured, target.stretch)
        unit = f" {target.unit}" if target.unit else ""
        limit = f"{target.op} {target.limit:g}{unit}"
        if target.stretch is not None:
            limit += f" (stretch {target.stretch:g})"
        rows.append(
            {
                "target": target.name,
                "limit": limit,
                "measured": measured,
                "min": s.get("min"),
                "max": s.get("max"),
                "runs": s["n"],
                "met": met,
                "stretch_met": stretch,
                "unit": target.unit,
            }
        )
    return rows
