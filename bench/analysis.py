"""Figures from what the client saw and what the simulator recorded.

Pure functions of recorded data (no processes, no gevent): the tests run them on
recorded stats. Every request carries a unique tag in its prompt
(``benchmark <tag>: …``), so a simulator task is matched to its request in any
mode (per-request session ids or a pool of accounts), and a request with more
than one task is a double charge.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from .responses import classify, sse_timing

TAG_IN_PROMPT = re.compile(r"benchmark (\S+?):")
#: server log lines worth counting per run (evidence of trouble in the service)
LOG_PATTERNS = {
    "worker_timeout": re.compile(r"WORKER TIMEOUT"),
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
    "error": re.compile(r"\[ERROR\]| ERROR "),
    "critical": re.compile(r"\[CRITICAL\]| CRITICAL "),
    "too_many_files": re.compile(r"Too many open files|EMFILE"),
    "worker_boot": re.compile(r"Booting worker"),
}


# --------------------------------------------------------------------- statistics
def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values: list[float]) -> dict[str, Any]:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": sum(values) / len(values),
        "min": min(values),
        "p50": quantile(values, 0.5),
        "p90": quantile(values, 0.9),
        "p99": quantile(values, 0.99),
        "max": max(values),
    }


def spread(values: list[float | None]) -> dict[str, Any]:
    """Mean, min, max and sample SD of one figure over several runs."""
    xs = [v for v in values if v is not None]
    if not xs:
        return {"n": 0, "values": values}
    mean = sum(xs) / len(xs)
    sd = (
        math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
        if len(xs) > 1
        else 0.0
    )
    return {
        "n": len(xs),
        "mean": mean,
        "min": min(xs),
        "max": max(xs),
        "sd": sd,
        "values": values,
    }


def dig(doc: dict[str, Any], path: str) -> Any:
    """``dig(run, "added_latency_s.mean")``; None when a key is missing."""
    for key in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


# ------------------------------------------------------------- requests ↔ tasks
def tasks_by_tag(stats: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for hid, task in (stats.get("tasks") or {}).items():
        task["history_id"] = hid
        match = TAG_IN_PROMPT.search(task.get("prompt") or "")
        out.setdefault(match.group(1) if match else "", []).append(task)
    return out


def charges(items: list[dict[str, Any]], stats: dict[str, Any]) -> dict[str, Any]:
    """Double charges: requests with more than one task, resent submit ids."""
    by_tag = tasks_by_tag(stats)
    tags = {item["tag"] for item in items}
    extra = {t: len(ts) - 1 for t, ts in by_tag.items() if t in tags and len(ts) > 1}
    return {
        "requests": len(items),
        "submissions": stats.get("submissions"),
        "requests_with_a_task": sum(1 for t in tags if by_tag.get(t)),
        "double_charged_requests": len(extra),
        "extra_tasks": sum(extra.values()),
        "double_charge_samples": sorted(extra)[:5],
        "duplicate_submit_ids": stats.get("duplicate_submit_ids"),
        "tasks_without_request": sum(
            len(ts) for t, ts in by_tag.items() if t not in tags
        ),
    }


def log_counts(text: str) -> tuple[dict[str, int], list[str]]:
    counts = {name: len(p.findall(text)) for name, p in LOG_PATTERNS.items()}
    keys = ("worker_timeout", "traceback", "error", "critical", "too_many_files")
    samples = [
        ln for ln in text.splitlines() if any(LOG_PATTERNS[k].search(ln) for k in keys)
    ][:8]
    return counts, samples


# ---------------------------------------------------------------- one run's figures
def analyse(
    label: str,
    items: list[dict[str, Any]],
    stats: dict[str, Any],
    meter: dict[str, Any],
    log_text: str = "",
    time_scale: float = 1.0,
) -> dict[str, Any]:
    """Everything one run measured. *items*: ``{"tag", "kind", "res"}`` (async:
    plus ``task``, the last task object, or ``lost``). Latencies are in real
    seconds; ``…_sim_s`` copies are divided by *time_scale* (simulated seconds)."""
    by_tag = tasks_by_tag(stats)
    tasks = stats.get("tasks") or {}
    failures: Counter = Counter()
    samples: dict[str, str] = {}
    lat, added, sim_added, lag, finish_lag, planned, queued, polls = (
        [] for _ in range(8)
    )
    ttfb, gaps, keepalive_first, images, kinds = [], [], [], Counter(), Counter()
    paid_failed = 0
    failed_tasks: list[dict[str, Any]] = []
    by_kind: dict[str, list[float]] = {}
    for item in items:
        reason, history, count = classify(item)
        kinds[item["kind"]] += 1
        candidates = by_tag.get(item["tag"]) or []
        task = tasks.get(history) if history else None
        task = task or max(candidates, key=lambda t: t["created"], default=None)
        if reason:
            failures[reason] += 1
            if len(failed_tasks) < 10:
                failed_tasks.append(_failed(item, reason, candidates))
            samples.setdefault(
                reason, (item["res"] or {}).get("message") or item["tag"]
            )
            if any(t.get("images_expected") for t in candidates):
                paid_failed += 1
            continue
        res = item["res"]
        images[count] += 1
        end, wall_end = (
            item.get("t_done", res["t_end"]),
            item.get("wall_done", res["wall_end"]),
        )
        latency = end - res["t_start"]
        lat.append(latency)
        if item["kind"] == "sse":
            timing = sse_timing(res)
            ttfb.append(timing["first_data_s"])
            gaps += timing["keepalive_gaps"]
            keepalive_first.append(timing["first_keepalive_s"])
        if task is None or task.get("planned_seconds") is None:
            continue
        planned.append(task["planned_seconds"])
        queued.append(task.get("queue_seconds") or 0.0)
        added.append(latency - task["planned_seconds"])
        by_kind.setdefault(item["kind"], []).append(latency - task["planned_seconds"])
        sim_added.append(task.get("added_latency"))
        polls.append(task.get("polls"))
        lag.append(task["created"] - res["wall_start"])
        finish_lag.append(wall_end - task["finished"])
    ok = len(lat)
    per_gen = (lambda x: x / ok) if ok else (lambda x: None)
    calls = stats.get("calls", {})
    total_calls = sum(calls.values())
    log_found, log_samples = log_counts(log_text)
    wall = meter.get("wall_s") or 0.0
    by_session = stats.get("history_calls_by_session") or {}
    task_polls = sum(t.get("polls") or 0 for t in tasks.values())
    scale = time_scale or 1.0
    run = {
        "run": label,
        "requests": len(items),
        "kinds": dict(kinds),
        "ok": ok,
        "failed": len(items) - ok,
        "failures": dict(failures.most_common()),
        "failure_samples": samples,
        "failed_requests": failed_tasks,
        "latency_s": summary(lat),
        "added_latency_s": summary(added),
        "sim_added_latency_s": summary(sim_added),
        "added_latency_by_kind_s": {k: summary(v) for k, v in sorted(by_kind.items())},
        "added_latency_sim_s": summary([a / scale for a in added]),
        "sim_added_latency_sim_s": summary(
            [a / scale for a in sim_added if a is not None]
        ),
        "planned_task_s": summary(planned),
        "queue_s": summary(queued),
        "submit_lag_s": summary(lag),
        "finish_to_response_s": summary(finish_lag),
        "polls_per_task": summary(polls),
        "sse_first_data_s": summary(ttfb) if ttfb else None,
        "sse_keepalive_gap_s": summary(gaps) if gaps else None,
        "sse_first_keepalive_s": summary(keepalive_first) if ttfb else None,
        "images_per_response": {str(k): v for k, v in sorted(images.items())},
        "upstream_calls": calls,
        "upstream_calls_total": total_calls,
        "calls_per_generation": per_gen(total_calls),
        "calls_per_generation_by_endpoint": {
            k: per_gen(v) for k, v in sorted(calls.items())
        },
        "history_calls_per_generation": per_gen(calls.get("history", 0)),
        "accounts_polled": len(by_session),
        "history_calls_by_session_max": max(by_session.values(), default=0),
        "history_calls_per_account_s_max": (
            max(by_session.values(), default=0) / wall if wall else None
        ),
        "task_polls_per_history_call": (
            task_polls / calls["history"] if calls.get("history") else None
        ),
        "charges": charges(items, stats),
        "paid_but_failed": paid_failed,
        "faults": stats.get("faults") or {},
        "violations": len(stats.get("violations") or []),
        "violation_samples": (stats.get("violations") or [])[:5],
        "rejections": len(stats.get("rejections") or []),
        "rejection_samples": (stats.get("rejections") or [])[:5],
        "time_scale": scale,
        "server_log": log_found,
        "server_log_samples": log_samples,
        **meter,
    }
    run["proxy_cpu_ms_per_generation"] = per_gen(meter.get("proxy_cpu_ms", 0.0))
    run["upstream_connections_opened_approx"] = meter.get("tcp", {}).get(
        "Tcp.ActiveOpens", 0
    ) - len(items)
    run["latencies"] = [round(x, 4) for x in lat]  # for the plots
    run["added_latencies"] = [round(x, 4) for x in added]
    return run


TASK_KEYS = (
    "history_id",
    "session",
    "fate",
    "status",
    "planned_seconds",
    "polls",
    "created",
    "finished",
    "final_seen_at",
    "final_polled_at",
    "finished_image_count",
    "images_expected",
    "gen_count",
)


def _failed(
    item: dict[str, Any], reason: str, tasks: list[dict[str, Any]]
) -> dict[str, Any]:
    """A failed request with what the simulator knows of its task(s)."""
    res = item.get("res") or {}
    return {
        "tag": item["tag"],
        "kind": item["kind"],
        "reason": reason,
        "wall_start": res.get("wall_start"),
        "wall_end": res.get("wall_end"),
        "task_id": item.get("task_id"),
        "tasks": [{k: t.get(k) for k in TASK_KEYS} for t in tasks],
    }


def rss_trend(
    series: list[list[float]] | list[tuple], warmup_share: float = 0.1
) -> dict[str, Any]:
    """RSS growth over a long run: the median of the last tenth against the
    median of the tenth after the warm-up (the first *warmup_share* is skipped)."""
    if len(series) < 10:
        return {"n": len(series)}
    t_end = series[-1][0]
    start = t_end * warmup_share
    early = [p[1] for p in series if start <= p[0] < start + t_end * 0.1]
    late = [p[1] for p in series if p[0] >= t_end * 0.9]
    if not early or not late:
        return {"n": len(series)}
    e, lt = quantile(early, 0.5), quantile(late, 0.5)
    return {
        "n": len(series),
        "early_mib": e,
        "late_mib": lt,
        "growth_pct": 100 * (lt - e) / e if e else None,
        "peak_mib": max(p[1] for p in series),
    }


def aggregate(runs: list[dict[str, Any]], keys: list[str]) -> dict[str, Any]:
    """The spread of *keys* (dotted paths) over runs of the same group (the
    label, or ``run["group"]``: every run of a realistic or restart scenario)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(run.get("group") or run["run"], []).append(run)
    return {
        label: {key: spread([dig(r, key) for r in rs]) for key in keys}
        for label, rs in groups.items()
    }
