"""PNG plots next to a report (matplotlib, Agg backend): the latency
distribution, upstream calls per generation by endpoint, and RSS over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _labels(runs: list[dict[str, Any]]) -> list[str]:
    """Run labels, made unique (a repeated level gets #2, #3 …)."""
    seen: dict[str, int] = {}
    out = []
    for r in runs:
        seen[r["run"]] = seen.get(r["run"], 0) + 1
        out.append(r["run"] if seen[r["run"]] == 1 else f"{r['run']} #{seen[r['run']]}")
    return out


def latency(report: dict[str, Any], path: Path) -> Path | None:
    runs = [r for r in report["runs"] if r.get("latencies")]
    if not runs:
        return None
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, r in zip(_labels(runs), runs, strict=True):
        a.hist(r["latencies"], bins=40, histtype="step", label=label)
        if r.get("added_latencies"):
            scale = r.get("time_scale") or 1.0
            b.hist(
                [x / scale for x in r["added_latencies"]],
                bins=40,
                histtype="step",
                label=label,
            )
    a.set_xlabel("end-to-end latency, real s")
    b.set_xlabel("added latency (end-to-end − task time), simulated s")
    for ax in (a, b):
        ax.set_ylabel("generations")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{report['scenario']}: latency distribution")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def calls(report: dict[str, Any], path: Path) -> Path | None:
    runs = [r for r in report["runs"] if r.get("calls_per_generation")]
    if not runs:
        return None
    plt = _pyplot()
    endpoints = sorted({k for r in runs for k in r["calls_per_generation_by_endpoint"]})
    labels = _labels(runs)
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(runs) + 3), 4.2))
    bottom = [0.0] * len(runs)
    for e in endpoints:
        vals = [r["calls_per_generation_by_endpoint"].get(e) or 0.0 for r in runs]
        ax.bar(labels, vals, bottom=bottom, label=e)
        bottom = [x + y for x, y in zip(bottom, vals, strict=True)]
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{total:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("upstream calls per generation")
    ax.set_title(f"{report['scenario']}: upstream calls per generation")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def rss(report: dict[str, Any], path: Path) -> Path | None:
    runs = [r for r in report["runs"] if r.get("rss_series")]
    if not runs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    for label, r in zip(_labels(runs), runs, strict=True):
        xs = [p[0] for p in r["rss_series"]]
        ax.plot(xs, [p[1] for p in r["rss_series"]], label=f"{label} RSS", lw=1)
        if any(p[2] for p in r["rss_series"]) and len(runs) <= 3:
            ax.plot(
                xs, [p[2] for p in r["rss_series"]], ls="--", lw=1, label=f"{label} PSS"
            )
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("MiB (master + workers)")
    ax.set_title(f"{report['scenario']}: server memory over time")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_report(report: dict[str, Any], stem: Path) -> list[str]:
    """Write ``<stem>-latency.png``, ``-calls.png``, ``-rss.png``; return them."""
    try:
        _pyplot()
    except ImportError:
        return []
    made = []
    for name, fn in (("latency", latency), ("calls", calls), ("rss", rss)):
        out = fn(report, Path(f"{stem}-{name}.png"))
        if out is not None:
            made.append(str(out))
    return made
