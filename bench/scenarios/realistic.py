"""``realistic``: what users meet at peak hours. Task times lognormal (median
``--task-seconds`` 30 s, ``--sigma`` 0.5), an exponential queue phase
(``--queue-seconds`` 10 s mean, with ``queue_info``), the staged statuses
20 → 42 → 45 with images one by one, then 50. ``--users`` 50 concurrent users
in a closed loop (each sends its next generation when the last one ended),
over ``--accounts`` 5 pooled accounts (``JIMENG_SESSION_IDS`` + ``API_KEYS``).

``POOL_MAX_CONCURRENCY`` is set to users/accounts (10), so all 50 run at Jimeng
at once: with the default 2, 40 of the 50 would wait for a slot and the run
would measure the slot queue, not the polling.

``--time-scale S`` runs every simulated duration S times faster *and* scales the
server's poll settings (``SCALED`` in base.py) by S, so the schedule sees the
same shape of task in fewer real seconds. Lateness is then reported in
simulated seconds (real / S). What does not scale: the poller's 0.2 s tick, its
1 s scan of the store, the 3 s retry of a waiting job and the HTTP round trips;
keep S ≥ 0.2 (the tick is then ≤ 1 simulated second) and compare with S = 1.
"""

from __future__ import annotations

import argparse
import random
from typing import Any

import gevent

from ..processes import Stack
from .base import POOL_KEY, pool_env, request_for, run_measured, scaled_env, send

NAME = "realistic"
SHORT: list[str] = []
TINY = [
    "--users",
    "6",
    "--accounts",
    "2",
    "--rounds",
    "1",
    "--time-scale",
    "0.05",
    "--stagger",
    "0.2",
    "--think",
    "0",
]
AGGREGATE = [
    "ok",
    "failed",
    "calls_per_generation",
    "calls_per_generation_by_endpoint.generate",
    "calls_per_generation_by_endpoint.history",
    "sim_added_latency_sim_s.mean",
    "sim_added_latency_sim_s.p50",
    "sim_added_latency_sim_s.p99",
    "added_latency_sim_s.mean",
    "added_latency_sim_s.p50",
    "added_latency_sim_s.p99",
    "proxy_cpu_ms_per_generation",
    "peak_rss_mib",
    "polls_per_task.mean",
    "task_polls_per_history_call",
    "history_calls_per_account_s_max",
    "latency_s.p50",
    "latency_s.p99",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--users", type=int, default=50, help="concurrent generations (50)")
    p.add_argument("--accounts", type=int, default=5, help="pooled accounts (5)")
    p.add_argument(
        "--rounds", type=int, default=2, help="generations per user per run (2)"
    )
    p.add_argument("--cap", type=int, help="POOL_MAX_CONCURRENCY (users/accounts)")
    p.add_argument("--task-seconds", type=float, default=30.0, help="median (30)")
    p.add_argument("--sigma", type=float, default=0.5, help="lognormal sigma (0.5)")
    p.add_argument(
        "--queue-seconds",
        type=float,
        default=10.0,
        help="mean queue wait, exponential (10; 0 = no queue phase)",
    )
    p.add_argument("--images", type=int, default=4, help="n per generation (4)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated durations × S, server poll settings × S (1)",
    )
    p.add_argument(
        "--stagger",
        type=float,
        default=5.0,
        help="users start spread over this many seconds (5)",
    )
    p.add_argument(
        "--think",
        type=float,
        default=2.0,
        help="a user waits U(0, think) s between generations (2)",
    )
    p.add_argument("--seed", type=int, default=19, help="simulator and client seed")


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.cap is None:
        args.cap = max(1, -(-args.users // args.accounts))
    if not 0 < args.time_scale <= 1:
        parser.error("--time-scale must be in (0, 1]")
    args.biggest = args.users


def run(args: argparse.Namespace, common: dict[str, Any]) -> dict[str, Any]:
    s = args.time_scale
    sim_args = [
        "--duration-model",
        "lognormal",
        "--task-seconds",
        str(args.task_seconds),
        "--task-sigma",
        str(args.sigma),
        "--queue-seconds",
        str(args.queue_seconds),
        "--time-scale",
        str(s),
        "--strict",
        "--initial-credits",
        "1000000",
        "--seed",
        str(args.seed),
        *args.sim_arg,
    ]
    env = pool_env(args.accounts, args.cap)
    clamped: list[str] = []
    if s != 1:
        from ..processes import free_port, probe_server_config, server_env

        base = probe_server_config(
            server_env(
                "http://127.0.0.1:1", free_port(), common["workdir"], common["env"]
            )
        )
        scaled, clamped = scaled_env(base, s)
        env.update(scaled)
    env.update(common["env"])
    rng = random.Random(args.seed)
    timeout = 900 + 5 * args.task_seconds * s
    runs = []
    with Stack(sim_args, env, root=common["root"], keep_logs=args.keep_logs) as stack:
        common["describe"](stack)
        for r in range(args.runs):
            port = stack.server.port
            label = f"run {r + 1}"

            def work(r: int = r, port: int = port) -> list[dict[str, Any]]:
                items: list[dict[str, Any]] = []

                def user(u: int) -> None:
                    gevent.sleep(args.stagger * u / max(args.users, 1))
                    for k in range(args.rounds):
                        tag = f"r{r + 1}u{u}k{k}"
                        item = {
                            "tag": tag,
                            "kind": "images",
                            "request": request_for(
                                port, "images", tag, POOL_KEY, n=args.images
                            ),
                        }
                        items.append(item)
                        send(port, item, timeout)
                        if k + 1 < args.rounds and args.think:
                            gevent.sleep(rng.uniform(0, args.think))

                gevent.joinall([gevent.spawn(user, u) for u in range(args.users)])
                return items

            prof = common["profiler"] if r == 0 else None
            run_ = run_measured(stack, label, work, time_scale=s, profile=prof)
            run_["group"] = "all runs"
            run_.update(kind="images", concurrency=args.users)
            runs.append(run_)
    return {
        "simulator": {
            "args": sim_args,
            "task_seconds": args.task_seconds,
            "sigma": args.sigma,
            "queue_seconds": args.queue_seconds,
            "time_scale": s,
            "duration_model": "lognormal",
        },
        "scaled_server_settings": {
            k: env[k] for k in env if k.startswith(("POLL_", "STALL"))
        },
        "clamped_settings": clamped,
        "runs": runs,
        "aggregate_keys": AGGREGATE,
    }
