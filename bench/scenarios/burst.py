"""``burst``: N requests released in the same instant, 5 s tasks (±30 %), each
with its own session id (so no account limit applies), at each level; then a
streamed chat run (time to first byte, keep-alive cadence) and a ``b64_json``
run. Before the levels: one cold c=20 (what a just-started server does) and an
unmeasured warm-up, so the levels run on a server that learned the task times."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..processes import Stack
from .base import release_at_once, request_for, run_measured

NAME = "burst"
DEFAULT_LEVELS = (20, 1000, 2000)
QUICK_LEVELS = (1, 20)
SHORT = ["--levels", "20,1000,2000"]
TINY = [
    "--server-env",
    "POLL_FIRST_DELAY=0.3",
    "--server-env",
    "POLL_EXPECTED_SECONDS=1",
    "--quick",
    "--levels",
    "1,5",
    "--task-seconds",
    "0.5",
    "--sse-n",
    "3",
    "--b64-n",
    "3",
]
AGGREGATE = [
    "ok",
    "failed",
    "latency_s.p50",
    "latency_s.p99",
    "added_latency_s.mean",
    "added_latency_s.p99",
    "calls_per_generation",
    "proxy_cpu_ms_per_generation",
    "peak_rss_mib",
    "sse_first_data_s.p99",
    "submit_lag_s.mean",
    "finish_to_response_s.mean",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--levels", help="comma list (default 20,1000,2000)")
    p.add_argument("--task-seconds", type=float, help="simulated task (default 5)")
    p.add_argument("--jitter", type=float, default=0.3, help="±fraction (0.3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="levels 1,20, task 1 s, SSE/b64 N=5, no cold run or warm-up",
    )
    p.add_argument("--sse-n", type=int, help="streamed chat requests (20; 0=skip)")
    p.add_argument("--b64-n", type=int, help="b64_json requests (20; 0=skip)")
    p.add_argument(
        "--sse-keepalive",
        type=float,
        default=2.0,
        help="SSE_KEEPALIVE_INTERVAL of the server (2 s: a 5 s task "
        "shows two keep-alives; the default 10 s would show none)",
    )
    p.add_argument("--warmup", type=int, help="unmeasured generations first (60)")
    p.add_argument(
        "--no-cold", dest="cold", action="store_false", help="skip the cold c=20 run"
    )
    p.add_argument(
        "--level-timeout",
        type=float,
        help="seconds a level may take (default 60 + 3 × the longest task)",
    )


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.levels:
        try:
            args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
        except ValueError:
            parser.error("--levels must be a comma list of integers")
        if not args.levels or min(args.levels) < 1:
            parser.error("--levels must be positive integers")
    else:
        args.levels = list(QUICK_LEVELS if args.quick else DEFAULT_LEVELS)
    if args.task_seconds is None:
        args.task_seconds = 1.0 if args.quick else 5.0
    n = 5 if args.quick else 20
    args.sse_n = n if args.sse_n is None else args.sse_n
    args.b64_n = n if args.b64_n is None else args.b64_n
    if args.warmup is None:
        args.warmup = 0 if args.quick else 60
    if args.quick:
        args.cold = False
    if args.level_timeout is None:
        args.level_timeout = 60 + 3 * args.task_seconds * (1 + args.jitter)
    args.biggest = max([*args.levels, args.sse_n, args.b64_n, args.warmup, 20])


def level(
    stack: Stack, label: str, kind: str, n: int, timeout: float, profile: Any = None
) -> dict[str, Any]:
    port = stack.server.port
    tag = re.sub(r"[^A-Za-z0-9]+", "", label) + f"x{len(stack.restarts)}"
    stack.level_count = getattr(stack, "level_count", 0) + 1
    tag += f"r{stack.level_count}"
    items = []
    for i in range(n):
        t = f"{tag}-{i}"  # its own session id: bench-<tag>
        items.append(
            {
                "tag": t,
                "kind": kind,
                "request": request_for(port, kind, t, f"bench-{t}"),
            }
        )

    def work() -> list[dict[str, Any]]:
        release_at_once(port, items, timeout)
        return items

    run = run_measured(stack, label, work, profile=profile)
    run.update(kind=kind, concurrency=n)
    return run


def run(args: argparse.Namespace, common: dict[str, Any]) -> dict[str, Any]:
    sim_args = [
        "--task-seconds",
        str(args.task_seconds),
        "--task-jitter",
        str(args.jitter),
        "--strict",
        "--initial-credits",
        "1000000",
        *args.sim_arg,
    ]
    # every request comes from 127.0.0.1: the per-address limit (600 a minute)
    # would refuse a burst that 2000 users on 2000 addresses send
    env = {
        "SSE_KEEPALIVE_INTERVAL": f"{args.sse_keepalive:g}",
        "RATE_LIMIT_PER_IP": "0",
        **common["env"],
    }
    runs: list[dict[str, Any]] = []
    timeout = args.level_timeout
    with Stack(sim_args, env, root=common["root"], keep_logs=args.keep_logs) as stack:
        common["describe"](stack)
        if args.cold:
            runs.append(level(stack, "c=20 cold", "images", 20, timeout))
        if args.warmup:
            level(stack, "warmup", "images", args.warmup, timeout)
        for r in range(args.runs):
            for n in args.levels:
                prof = common["profiler"] if r == 0 and n == max(args.levels) else None
                runs.append(level(stack, f"c={n}", "images", n, timeout, prof))
            if args.sse_n:
                runs.append(
                    level(stack, f"sse c={args.sse_n}", "sse", args.sse_n, timeout)
                )
            if args.b64_n:
                runs.append(
                    level(stack, f"b64_json c={args.b64_n}", "b64", args.b64_n, timeout)
                )
    return {
        "simulator": {
            "args": sim_args,
            "task_seconds": args.task_seconds,
            "jitter": args.jitter,
        },
        "runs": runs,
        "aggregate_keys": AGGREGATE,
    }
