"""``soak``: mixed traffic at a steady rate with faults on, for ``--minutes``
(3 in ``make bench``; 30 for the full run): synchronous images (``url`` and
``b64_json``), streamed chats and async tasks (``Prefer: respond-async``, then
``GET /v1/tasks/{id}`` every 2 s) and image edits (``/v1/images/edits``, JSON
with a 64×64 PNG as a ``data:`` URI: the upload path), arrivals Poisson at
``--rate`` per second, every request with an ``Idempotency-Key`` (as the SDKs
send), over pooled accounts.

Faults (``--faults``, per upstream call): HTTP 5xx, non-JSON answers, resets,
slow answers, numeric ``ret``, string statuses, missing ``item_list``, an
accepted generate without ``aigc_data``; tasks: a few stall for 20 s, fail
part-way, or come without ``item_list`` the first time they end.

Reports RSS over time (growth of the last tenth against the tenth after the
warm-up), errors by reason, double charges (simulator tasks per request and
resent ``submit_id``s), lost jobs (an async task that never ended or vanished,
or a synchronous request without a complete HTTP response)."""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import gevent

from ..analysis import rss_trend
from ..processes import Stack
from .base import POOL_KEY, follow_task, pool_env, request_for, run_measured, send

NAME = "soak"
SHORT = ["--minutes", "3"]
TINY = [
    "--server-env",
    "POLL_FIRST_DELAY=0.3",
    "--server-env",
    "POLL_EXPECTED_SECONDS=1",
    "--minutes",
    "0.15",
    "--rate",
    "3",
    "--task-seconds",
    "0.5",
    "--queue-seconds",
    "0.2",
    "--drain",
    "30",
    "--faults",
    "fault_http_5xx=0.02,fault_non_json=0.02,stall_rate=0.05,stall_seconds=2",
]
DEFAULT_FAULTS = (
    "fault_http_5xx=0.01,fault_non_json=0.005,fault_reset=0.005,fault_slow=0.001,"
    "fault_numeric_ret=0.01,fault_string_status=0.01,fault_missing_item_list=0.01,"
    "fault_null_aigc_data=0.002,stall_rate=0.01,stall_seconds=20,"
    "partial_fail_rate=0.01,final_without_items_rate=0.05"
)
AGGREGATE = [
    "ok",
    "failed",
    "lost_jobs",
    "charges.extra_tasks",
    "charges.duplicate_submit_ids",
    "rss_trend.growth_pct",
    "peak_rss_mib",
    "calls_per_generation",
    "proxy_cpu_ms_per_generation",
    "added_latency_s.mean",
    "sse_first_data_s.p99",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=3.0, help="duration (3; full: 30)")
    p.add_argument("--rate", type=float, default=1.0, help="generations per second (1)")
    p.add_argument(
        "--mix",
        default="images=0.4,b64=0.05,edits=0.1,sse=0.2,async=0.25",
        help="shares of each kind (images, b64, edits, sse, async)",
    )
    p.add_argument("--accounts", type=int, default=5, help="pooled accounts (5)")
    p.add_argument("--cap", type=int, default=10, help="POOL_MAX_CONCURRENCY (10)")
    p.add_argument(
        "--task-seconds",
        type=float,
        default=10.0,
        help="median task (lognormal, sigma 0.5; 10)",
    )
    p.add_argument(
        "--queue-seconds", type=float, default=2.0, help="mean queue wait (2)"
    )
    p.add_argument(
        "--faults", default=DEFAULT_FAULTS, help="simulator knobs k=v,… ('' = none)"
    )
    p.add_argument(
        "--drain",
        type=float,
        default=300,
        help="seconds in-flight work may take after the last arrival (300)",
    )
    p.add_argument("--seed", type=int, default=19)


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    try:
        args.mix = {k: float(v) for k, v in (x.split("=") for x in args.mix.split(","))}
    except ValueError:
        parser.error("--mix must look like images=0.5,sse=0.5")
    if set(args.mix) - {"images", "b64", "edits", "sse", "async"}:
        parser.error("--mix kinds are images, b64, edits, sse, async")
    args.biggest = int(args.rate * 120) + 100


def fault_args(text: str) -> list[str]:
    out = []
    for pair in filter(None, (x.strip() for x in text.split(","))):
        key, _, value = pair.partition("=")
        out += [f"--{key.replace('_', '-')}", value]
    return out


def run(args: argparse.Namespace, common: dict[str, Any]) -> dict[str, Any]:
    sim_args = [
        "--duration-model",
        "lognormal",
        "--task-seconds",
        str(args.task_seconds),
        "--queue-seconds",
        "2",
        "--strict",
        "--initial-credits",
        "100000000",
        "--seed",
        str(args.seed),
        *fault_args(args.faults),
        *args.sim_arg,
    ]
    env = {**pool_env(args.accounts, args.cap), **common["env"]}
    rng = random.Random(args.seed)
    kinds, weights = zip(*args.mix.items(), strict=True)
    duration = args.minutes * 60
    with Stack(sim_args, env, root=common["root"], keep_logs=args.keep_logs) as stack:
        common["describe"](stack)
        port = stack.server.port

        def work() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            greenlets = []
            end = time.monotonic() + duration
            until = end + args.drain

            def one(item: dict[str, Any]) -> None:
                send(port, item, max(until - time.monotonic(), 1))
                if item["kind"] == "async":
                    follow_task(port, item, POOL_KEY, 2.0, until)

            i = 0
            while time.monotonic() < end:
                kind = rng.choices(kinds, weights)[0]
                tag = f"s{i}"
                async_ = kind == "async"
                item = {
                    "tag": tag,
                    "kind": kind,
                    "request": request_for(
                        port,
                        "images" if async_ else kind,
                        tag,
                        POOL_KEY,
                        n=rng.choice((1, 2, 4)),
                        async_=async_,
                        idempotent=True,
                    ),
                }
                items.append(item)
                greenlets.append(gevent.spawn(one, item))
                i += 1
                gevent.sleep(rng.expovariate(args.rate))
            gevent.joinall(greenlets, timeout=args.drain + 60)
            return items

        soak = run_measured(
            stack, "soak", work, series_every=2.0, profile=common["profiler"]
        )
    lost = [i for i in (soak.get("failures") or {}) if i.startswith("lost")]
    no_response = [r for r in soak["failures"] if _transport(r)]
    soak["lost_jobs"] = sum(soak["failures"][r] for r in set(lost + no_response))
    soak["lost_breakdown"] = {r: soak["failures"][r] for r in set(lost + no_response)}
    soak["rss_trend"] = rss_trend(soak["rss_series"])
    soak.update(kind="mixed", concurrency=None)
    return {
        "simulator": {
            "args": sim_args,
            "task_seconds": args.task_seconds,
            "faults": args.faults,
        },
        "minutes": args.minutes,
        "rate": args.rate,
        "mix": args.mix,
        "runs": [soak],
        "aggregate_keys": AGGREGATE,
    }


def _transport(reason: str) -> bool:
    return (
        reason.startswith(
            ("timeout", "connection", "broken pipe", "closed", "no result")
        )
        or " errno " in reason
    )
