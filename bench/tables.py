"""The Markdown tables of each scenario (``TABLES[scenario](report)``)."""

from __future__ import annotations

import json
from typing import Any

from .analysis import dig
from .format import fmt, table


def gap_range(r: dict[str, Any]) -> str:
    g = r.get("sse_keepalive_gap_s") or {}
    return f"{fmt(g.get('mean'))} ({fmt(g.get('min'))}–{fmt(g.get('max'))})"


def burst_tables(report: dict[str, Any]) -> list[str]:
    runs = report["runs"]
    rows = [
        [
            r["run"],
            r["concurrency"],
            r["ok"],
            r["failed"],
            fmt(dig(r, "latency_s.p50")),
            fmt(dig(r, "latency_s.p99")),
            fmt(dig(r, "added_latency_s.mean")),
            fmt(dig(r, "added_latency_s.p99")),
            fmt(r["calls_per_generation"]),
            fmt(r["proxy_cpu_ms_per_generation"], 1),
            fmt(r["peak_rss_mib"], 0),
            r["violations"],
        ]
        for r in runs
    ]
    out = table(
        [
            "run",
            "c",
            "ok",
            "fail",
            "p50 s",
            "p99 s",
            "added mean s",
            "added p99 s",
            "calls/gen",
            "CPU ms/gen",
            "peak RSS MiB",
            "violations",
        ],
        rows,
    )
    sse = [r for r in runs if r.get("kind") == "sse"]
    if sse:
        out += [
            "",
            *table(
                [
                    "SSE run",
                    "c",
                    "first data p50 s",
                    "first data p99 s",
                    "keep-alives",
                    "keep-alive gap mean s (min–max)",
                    "total p50 s",
                ],
                [
                    [
                        r["run"],
                        r["concurrency"],
                        fmt(dig(r, "sse_first_data_s.p50"), 3),
                        fmt(dig(r, "sse_first_data_s.p99"), 3),
                        dig(r, "sse_keepalive_gap_s.n") or 0,
                        gap_range(r),
                        fmt(dig(r, "latency_s.p50")),
                    ]
                    for r in sse
                ],
            ),
        ]
    diag = []
    for r in runs:
        split = "/".join(f"{v:.0f}" for v in r["proxy_cpu_ms_by_pid"].values())
        diag.append(
            [
                r["run"],
                fmt(r["wall_s"], 1),
                fmt(dig(r, "submit_lag_s.mean")),
                fmt(dig(r, "finish_to_response_s.mean")),
                fmt(r["history_calls_per_generation"]),
                r["upstream_connections_opened_approx"],
                r["peak_sockets"].get("server_established", 0),
                r["tcp"].get("TcpExt.ListenOverflows", 0),
                split,
                fmt(r["client_cpu_pct"], 0),
                fmt(r["simulator_cpu_pct"], 0),
                fmt(r["machine_busy_pct"], 0),
                fmt(r["other_processes_cpu_ms"] / 1000, 1),
            ]
        )
    out += [
        "",
        "Diagnostics (where the time and the load go):",
        "",
        *table(
            [
                "run",
                "wall s",
                "submit lag s",
                "finish→response s",
                "history/gen",
                "upstream conns opened",
                "peak conns in",
                "listen overflows",
                "CPU ms master/workers",
                "client CPU %",
                "sim CPU %",
                "machine busy %",
                "other procs CPU s",
            ],
            diag,
        ),
    ]
    return out


def realistic_tables(report: dict[str, Any]) -> list[str]:
    runs = report["runs"]
    endpoints = sorted({k for r in runs for k in r["upstream_calls"]})
    rows = []
    for r in runs:
        by = r["calls_per_generation_by_endpoint"]
        rows.append(
            [
                r["run"],
                r["ok"],
                r["failed"],
                fmt(r["calls_per_generation"]),
                *[fmt(by.get(e)) for e in endpoints],
                fmt(dig(r, "polls_per_task.mean")),
                fmt(r["task_polls_per_history_call"], 1),
                fmt(r["history_calls_per_account_s_max"]),
            ]
        )
    out = [
        "Upstream calls per generation, by endpoint:",
        "",
        *table(
            [
                "run",
                "ok",
                "fail",
                "calls/gen",
                *[f"{e}/gen" for e in endpoints],
                "polls/task",
                "tasks per history call",
                "history calls/account/s (max)",
            ],
            rows,
        ),
    ]
    lat = []
    for r in runs:
        sim, cli = r["sim_added_latency_sim_s"], r["added_latency_sim_s"]
        lat.append(
            [
                r["run"],
                fmt(sim.get("mean")),
                fmt(sim.get("p50")),
                fmt(sim.get("p99")),
                fmt(cli.get("mean")),
                fmt(cli.get("p50")),
                fmt(cli.get("p99")),
                fmt(dig(r, "latency_s.p50"), 1),
                fmt(dig(r, "planned_task_s.p50"), 1),
                fmt(r["proxy_cpu_ms_per_generation"], 1),
                fmt(r["peak_rss_mib"], 0),
                fmt(r["other_processes_cpu_ms"] / 1000, 1),
            ]
        )
    out += [
        "",
        "Added latency in simulated seconds (simulator: last image → the poll "
        "that delivered it; client: end-to-end − the task's planned time):",
        "",
        *table(
            [
                "run",
                "sim mean",
                "sim p50",
                "sim p99",
                "client mean",
                "client p50",
                "client p99",
                "e2e p50 s",
                "task p50 s",
                "CPU ms/gen",
                "peak RSS MiB",
                "other procs CPU s",
            ],
            lat,
        ),
    ]
    return out


def soak_tables(report: dict[str, Any]) -> list[str]:
    r = report["runs"][0]
    t, c = r.get("rss_trend") or {}, r["charges"]
    rows = [
        ["requests", r["requests"]],
        ["by kind", json.dumps(r["kinds"])],
        ["ok / failed", f"{r['ok']} / {r['failed']}"],
        ["lost jobs", r["lost_jobs"]],
        [
            "double-charged requests / extra tasks / resent submit ids",
            f"{c['double_charged_requests']} / {c['extra_tasks']} / "
            f"{c['duplicate_submit_ids']}",
        ],
        [
            "submissions / requests with a task",
            f"{c['submissions']} / {c['requests_with_a_task']}",
        ],
        ["charged but failed (task had images, request failed)", r["paid_but_failed"]],
        [
            "RSS after warm-up → end (MiB)",
            f"{fmt(t.get('early_mib'), 0)} → {fmt(t.get('late_mib'), 0)} "
            f"({fmt(t.get('growth_pct'), 1)} %), peak {fmt(r['peak_rss_mib'], 0)}",
        ],
        [
            "calls/gen, CPU ms/gen",
            f"{fmt(r['calls_per_generation'])}, "
            f"{fmt(r['proxy_cpu_ms_per_generation'], 1)}",
        ],
        [
            "added latency mean / p99 s",
            f"{fmt(dig(r, 'added_latency_s.mean'))} / "
            f"{fmt(dig(r, 'added_latency_s.p99'))}",
        ],
        ["SSE first data p99 s", fmt(dig(r, "sse_first_data_s.p99"), 3)],
        [
            "added latency by kind, mean / p99 s",
            ", ".join(
                f"{k} {fmt(v.get('mean'))} / {fmt(v.get('p99'))}"
                for k, v in (r.get("added_latency_by_kind_s") or {}).items()
            ),
        ],
        ["faults injected", json.dumps(r["faults"])],
    ]
    out = table(["soak", "value"], rows)
    if r["failures"]:
        out += [
            "",
            *table(
                ["error", "count", "sample"],
                [
                    [k, v, str(r["failure_samples"].get(k, ""))[:120].replace("|", "/")]
                    for k, v in r["failures"].items()
                ],
            ),
        ]
    return out


def restart_tables(report: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["run"],
            r["accepted"],
            r["refused"],
            r["retried"],
            "; ".join(json.dumps(s) for s in r["at_sigterm"]),
            fmt(r["restart_stop_s"], 1),
            fmt(r["restart_start_s"], 1),
            r["ok"],
            r["failed"],
            r["lost_jobs"],
            r["extra_submits"],
            fmt(dig(r, "sim_added_latency_s.max"), 1),
        ]
        for r in report["runs"]
    ]
    out = table(
        [
            "run",
            "jobs accepted",
            "refused",
            "retried",
            "at SIGTERM",
            "stop s",
            "start s",
            "completed",
            "failed",
            "lost",
            "extra submits",
            "max lateness s",
        ],
        rows,
    )
    fails = {k: v for r in report["runs"] for k, v in r["failures"].items()}
    if fails:
        out += ["", "Failures: " + ", ".join(f"{k}: {v}" for k, v in fails.items())]
    return out


TABLES = {
    "burst": burst_tables,
    "realistic": realistic_tables,
    "soak": soak_tables,
    "restart": restart_tables,
}
