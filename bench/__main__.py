"""``python -m bench SCENARIO [options]``: run one scenario (or ``all``, the
short version of each, as ``make bench`` does) and write its JSON, Markdown and
PNG plots to ``--out-dir`` (default bench/results/). The report goes to stdout,
progress to stderr. Exit status: 0 when measured (failed requests are results),
1 when ``--check`` is given and a target was missed, 2 on a setup error, 130 on
Ctrl-C."""

import warnings

from gevent import monkey

warnings.filterwarnings("ignore", category=monkey.MonkeyPatchWarning)
monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from . import ROOT, BenchError, log  # noqa: E402
from .analysis import aggregate  # noqa: E402
from .processes import parse_env_pairs  # noqa: E402
from .procfs import machine_facts, raise_nofile  # noqa: E402
from .profile import PySpy  # noqa: E402
from .report import fmt, table, write  # noqa: E402
from .scenarios import SCENARIOS, base  # noqa: E402
from .targets import evaluate  # noqa: E402


def common_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("common")
    g.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    g.add_argument("--out", help="the JSON path (the .md and .png go next to it)")
    g.add_argument("--runs", type=int, default=1, help="repeat the measured runs")
    g.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="K=V",
        help="server setting (repeatable; BENCH_SERVER_ENV='K=V …' too)",
    )
    g.add_argument("--sim-arg", action="append", default=[], help="simulator flag")
    g.add_argument(
        "--server-root",
        default=str(ROOT),
        help="run the server from this checkout (measure a patched copy)",
    )
    g.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on the workers (burst: the largest level)",
    )
    g.add_argument("--profile-rate", type=int, default=100, help="py-spy Hz (100)")
    g.add_argument("--no-plots", dest="plots", action="store_false")
    g.add_argument("--keep-logs", action="store_true", help="keep server logs")
    g.add_argument(
        "--record",
        action="store_true",
        help="also write <out>-recorded.json: responses and stats per run",
    )
    g.add_argument("--check", action="store_true", help="exit 1 if a target is missed")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="scenario", required=True)
    for name, module in SCENARIOS.items():
        p = sub.add_parser(
            name,
            help=module.__doc__.split("\n")[0],
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        common_arguments(p)
    p = sub.add_parser("report", help="re-render reports from their JSON")
    p.add_argument("json", nargs="+", help="bench/results/<scenario>.json …")
    p.add_argument("--no-plots", dest="plots", action="store_false")
    p = sub.add_parser("all", help="the short version of every scenario (make bench)")
    p.add_argument("--tiny", action="store_true", help="seconds-long runs (tests)")
    p.add_argument("--only", help="comma list of scenarios")
    common_arguments(p)
    return top


def run_one(name: str, argv: list[str], command: str) -> dict[str, Any]:
    top = parser()
    args = top.parse_args([name, *argv])
    module = SCENARIOS[name]
    module.finish_args(args, top)
    started = time.monotonic()
    nofile = raise_nofile(args.biggest * 2 + 512)
    env = parse_env_pairs(os.environ.get("BENCH_SERVER_ENV", ""))
    env.update(parse_env_pairs(" ".join(shlex.quote(p) for p in args.server_env)))
    report: dict[str, Any] = {
        "scenario": name,
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_facts(),
        "rlimit_nofile": nofile,
    }

    def describe(stack: Any) -> None:
        report["server"] = stack.describe()

    common = {
        "env": env,
        "root": Path(args.server_root).resolve(),
        "describe": describe,
        "profiler": PySpy(args.profile_rate) if args.profile else None,
        "workdir": Path(tempfile.gettempdir()),
    }
    log(f"scenario {name}: {command}")
    base.RECORD = [] if args.record else None
    report.update(module.run(args, common))
    report["duration_s"] = time.monotonic() - started
    report["aggregate"] = aggregate(report["runs"], report["aggregate_keys"])
    config = (report.get("server") or {}).get("config") or {}
    report["targets"] = evaluate(name, report["runs"], config)
    out = Path(args.out) if args.out else Path(args.out_dir) / f"{name}.json"
    text = write(report, out, plots=args.plots)
    if common["profiler"] is not None and common["profiler"].raw:
        out.with_name(out.stem + "-pyspy.txt").write_text(common["profiler"].raw)
    if base.RECORD is not None:
        rec = out.with_name(out.stem + "-recorded.json")
        rec.write_text(json.dumps(base.RECORD, default=str) + "\n")
        base.RECORD = None
    print(text, flush=True)
    log(f"wrote {out} and {out.with_suffix('.md')}")
    report["out"] = str(out)
    report["check"] = args.check
    return report


def rerender(path: Path, plots: bool = True) -> None:
    """Recompute the spread and the targets of a saved report; write it again."""
    report = json.loads(path.read_text())
    report["aggregate"] = aggregate(report["runs"], report["aggregate_keys"])
    config = (report.get("server") or {}).get("config") or {}
    report["targets"] = evaluate(report["scenario"], report["runs"], config)
    print(write(report, path, plots=plots))


def summary(reports: list[dict[str, Any]]) -> str:
    rows = []
    for rep in reports:
        for t in rep.get("targets") or []:
            verdict = {True: "met", False: "**missed**", None: "n/a"}[t["met"]]
            rows.append(
                [rep["scenario"], t["target"], t["limit"], fmt(t["measured"]), verdict]
            )
    lines = [
        "# All scenarios: targets",
        "",
        *table(["scenario", "target", "limit", "measured", ""], rows),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m bench", *(shlex.quote(a) for a in argv)])
    args = parser().parse_args(argv)
    try:
        if args.scenario == "report":
            for path in args.json:
                rerender(Path(path), args.plots)
            return 0
        if args.scenario != "all":
            rep = run_one(args.scenario, argv[1:], command)
            missed = any(t["met"] is False for t in rep["targets"])
            return 1 if args.check and missed else 0
        names = args.only.split(",") if args.only else list(SCENARIOS)
        rest = [a for a in argv[1:] if a not in ("--tiny",)]
        if args.only:
            i = rest.index("--only")
            rest = rest[:i] + rest[i + 2 :]
        reports = []
        for name in names:
            extra = SCENARIOS[name].TINY if args.tiny else SCENARIOS[name].SHORT
            reports.append(run_one(name, [*extra, *rest], f"{command} ({name})"))
        text = summary(reports)
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.out_dir) / "summary.md").write_text(text)
        print(text)
        missed = any(t["met"] is False for r in reports for t in r["targets"])
        return 1 if args.check and missed else 0
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        log("interrupted; the server and the simulator were stopped")
        return 130


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
