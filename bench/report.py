"""The Markdown report of a scenario (tables, targets, profile) and the files:
``<out>.json``, ``<out>.md`` and the PNG plots next to them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .format import fmt, fmt_spread, table
from .tables import TABLES


def header(report: dict[str, Any]) -> list[str]:
    m, s = report["machine"], report.get("server") or {}
    c = s.get("config") or {}
    extra = " ".join(f"{k}={v}" for k, v in (s.get("extra_env") or {}).items())
    return [
        f"# Scenario `{report['scenario']}`",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, Linux "
        f"{m['kernel']}, Python {m['python']}, gunicorn "
        f"{m['versions'].get('gunicorn')}, gevent {m['versions'].get('gevent')}; "
        "load average at start "
        f"{' '.join(m['loadavg_at_start'])}. The client, the simulator and the server "
        "share these cores.",
        f"Server: {s.get('workers_running')} gevent workers, store "
        f"{c.get('STORE_URL') or 'SQLite in a fresh DATA_DIR'}, LOG_LEVEL "
        f"{c.get('LOG_LEVEL')}; poll first/expected/finishing/max/min-per-account "
        f"{c.get('POLL_FIRST_DELAY')}/{c.get('POLL_EXPECTED_SECONDS')}/"
        f"{c.get('POLL_FINISHING_INTERVAL')}/{c.get('POLL_MAX_INTERVAL')}/"
        f"{c.get('POLL_MIN_INTERVAL')} s. Bench env: {extra or 'none'}.",
        f"Simulator: `{' '.join(report['simulator']['args'])}`. Git {m.get('git')}.",
        "",
    ]


def targets_table(rows: list[dict[str, Any]]) -> list[str]:
    body = []
    for t in rows:
        rng = ""
        if t["runs"] > 1 and t["min"] != t["max"]:
            rng = f" ({fmt(t['min'])}–{fmt(t['max'])})"
        verdict = {True: "**met**", False: "**missed**", None: "n/a"}[t["met"]]
        if t.get("stretch_met") is not None:
            verdict += ", stretch " + ("met" if t["stretch_met"] else "missed")
        body.append(
            [t["target"], t["limit"], fmt(t["measured"]) + rng, t["runs"], verdict]
        )
    return [
        "## Targets",
        "",
        *table(["target", "limit", "measured", "runs", ""], body),
        "",
    ]


def profile_table(report: dict[str, Any]) -> list[str]:
    out = []
    for r in report["runs"]:
        p = r.get("profile")
        if not p or not p.get("samples"):
            continue
        rows = [
            [x["frame"].replace("|", "/"), f"{100 * x['share']:.1f} %"]
            for x in p["inclusive"][:20]
        ]
        own = [
            [x["frame"].replace("|", "/"), f"{100 * x['share']:.1f} %"]
            for x in p["self"][:12]
        ]
        out += [
            f"## Profile of {r['run']} (py-spy, {p['rate_hz']} Hz, all workers)",
            "",
            f"{p['samples']} samples in Python code; {p.get('idle_samples', 0)} more "
            "in the event loop's own wait (`Hub.run` innermost) are left out.",
            "",
            *table(["frame (inclusive)", "share"], rows),
            "",
            *table(["frame (self)", "share"], own),
            "",
        ]
    return out


def spread_table(report: dict[str, Any]) -> list[str]:
    agg = report.get("aggregate") or {}
    multi = {k: v for k, v in agg.items() if any(s.get("n", 0) > 1 for s in v.values())}
    if not multi:
        return []
    keys = report["aggregate_keys"]
    rows = [
        [label, *[fmt_spread(figs.get(k)) for k in keys]]
        for label, figs in multi.items()
    ]
    return ["## Spread over runs: mean (min–max)", "", *table(["run", *keys], rows), ""]


def markdown(report: dict[str, Any]) -> str:
    out = header(report)
    out += TABLES[report["scenario"]](report) + [""]
    out += spread_table(report)
    out += targets_table(report.get("targets") or [])
    out += profile_table(report)
    for note in report.get("notes") or []:
        out.append(f"- {note}")
    if report.get("plots"):
        out += ["", "Plots: " + ", ".join(f"`{Path(p).name}`" for p in report["plots"])]
    out += ["", f"Command: `{report['command']}` ({report['duration_s']:.0f} s)."]
    return "\n".join(out) + "\n"


def write(report: dict[str, Any], out_json: Path, plots: bool = True) -> str:
    """Write the JSON, the PNGs and the Markdown; return the Markdown."""
    out_json.parent.mkdir(parents=True, exist_ok=True)
    if plots:
        from .plots import plot_report

        report["plots"] = plot_report(report, out_json.with_suffix(""))
    text = markdown(report)
    out_json.write_text(json.dumps(report, indent=1, default=str) + "\n")
    out_json.with_suffix(".md").write_text(text)
    return text
