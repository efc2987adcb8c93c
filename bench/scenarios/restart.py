"""``restart``: async jobs in flight while the server is restarted.

``--jobs`` async generations (``Prefer: respond-async`` and an
``Idempotency-Key`` each) over pooled accounts with the default
``POOL_MAX_CONCURRENCY`` 2, so at the restart some jobs run at Jimeng and
others wait for a slot. ``--restart-after`` s later the server gets SIGTERM and,
once it has exited, starts again on the same port and DATA_DIR
(``--restarts`` times). ``--during`` more jobs are sent while it shuts down:
those refused are not jobs; those whose answer was lost are sent again with the
same ``Idempotency-Key`` after the restart (as an SDK retry would). Then every
accepted task is read until it ends.

Reports lost jobs (accepted, never ended, or gone) and extra submits (simulator
tasks beyond one per job, resent ``submit_id``s, tasks of no job); both must be 0.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

import gevent

from .. import log
from ..client import build_request, http_call, try_json
from ..processes import Stack
from .base import (
    POOL_KEY,
    follow_task,
    pool_env,
    release_at_once,
    request_for,
    run_measured,
    send,
)

NAME = "restart"
SHORT: list[str] = []
TINY = [
    "--server-env",
    "POLL_FIRST_DELAY=0.3",
    "--server-env",
    "POLL_EXPECTED_SECONDS=1",
    "--server-env",
    "LEASE_TTL=2",
    "--jobs",
    "6",
    "--accounts",
    "2",
    "--task-seconds",
    "1",
    "--restart-after",
    "0.5",
    "--during",
    "2",
    "--drain",
    "40",
]
AGGREGATE = [
    "lost_jobs",
    "extra_submits",
    "ok",
    "failed",
    "restart_stop_s",
    "restart_start_s",
    "sim_added_latency_s.max",
    "latency_s.max",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=30, help="async jobs before (30)")
    p.add_argument(
        "--during",
        type=int,
        default=5,
        help="jobs sent while the server shuts down (5)",
    )
    p.add_argument("--accounts", type=int, default=5, help="pooled accounts (5)")
    p.add_argument("--cap", type=int, default=2, help="POOL_MAX_CONCURRENCY (2)")
    p.add_argument(
        "--task-seconds",
        type=float,
        default=8.0,
        help="median task (lognormal, sigma 0.5; 8)",
    )
    p.add_argument(
        "--restart-after",
        type=float,
        default=4.0,
        help="seconds from the submits to SIGTERM (4)",
    )
    p.add_argument("--restarts", type=int, default=1, help="restarts per run (1)")
    p.add_argument(
        "--drain",
        type=float,
        default=240,
        help="seconds the jobs may take after the last restart (240)",
    )


def finish_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    args.biggest = args.jobs + args.during * args.restarts + 50


def snapshot(port: int, items: list[dict[str, Any]]) -> dict[str, int]:
    """Task statuses (``progress.stage`` for running ones) just before SIGTERM."""
    seen: Counter = Counter()
    for item in items:
        doc = try_json(item["res"]) if item.get("res") else None
        if not isinstance(doc, dict) or not doc.get("id"):
            continue
        got = http_call(
            port,
            build_request(
                "GET",
                f"/v1/tasks/{doc['id']}",
                port,
                headers={"Authorization": f"Bearer {POOL_KEY}"},
            ),
            10,
        )
        task = try_json(got) if not got["error"] else None
        if isinstance(task, dict):
            stage = (task.get("progress") or {}).get("stage")
            seen[f"{task.get('status')}/{stage}" if stage else task.get("status")] += 1
    return dict(seen)


def run(args: argparse.Namespace, common: dict[str, Any]) -> dict[str, Any]:
    sim_args = [
        "--duration-model",
        "lognormal",
        "--task-seconds",
        str(args.task_seconds),
        "--strict",
        "--initial-credits",
        "1000000",
        *args.sim_arg,
    ]
    env = {**pool_env(args.accounts, args.cap), **common["env"]}
    runs = []
    with Stack(sim_args, env, root=common["root"], keep_logs=args.keep_logs) as stack:
        common["describe"](stack)
        for r in range(args.runs):
            info: dict[str, Any] = {"restarts": [], "at_sigterm": []}

            def work(r: int = r, info: dict = info) -> list[dict[str, Any]]:
                port = stack.server.port
                items = [_item(port, f"j{r}n{i}") for i in range(args.jobs)]
                release_at_once(port, items, 60)
                for cycle in range(args.restarts):
                    gevent.sleep(args.restart_after)
                    info["at_sigterm"].append(snapshot(port, items))
                    during = [
                        _item(port, f"j{r}c{cycle}d{i}") for i in range(args.during)
                    ]
                    items += during
                    senders = [
                        gevent.spawn_later(0.05 + 0.1 * i, send, port, d, 30)
                        for i, d in enumerate(during)
                    ]
                    log(f"SIGTERM (restart {cycle + 1}); {args.during} more jobs sent")
                    info["restarts"].append(stack.restart_server())
                    gevent.joinall(senders)
                    for d in during:  # an answer lost in the restart: the SDK retries
                        if d["res"]["status"] != 202 and not _refused(d["res"]):
                            d["first_try"] = d["res"]["error"] or d["res"]["status"]
                            send(port, d, 30)
                until = time.monotonic() + args.drain
                accepted = [i for i in items if i["res"] and i["res"]["status"] == 202]
                gevent.joinall(
                    [
                        gevent.spawn(follow_task, port, i, POOL_KEY, 1.0, until)
                        for i in accepted
                    ]
                )
                refused = [i for i in items if i not in accepted]
                info["accepted"], info["refused"] = len(accepted), len(refused)
                info["retried"] = sum(1 for i in items if "first_try" in i)
                return accepted

            run_ = run_measured(stack, f"run {r + 1}", work)
            c = run_["charges"]
            run_["lost_jobs"] = sum(
                v for k, v in run_["failures"].items() if k.startswith("lost")
            )
            run_["extra_submits"] = (
                c["extra_tasks"]
                + (c["duplicate_submit_ids"] or 0)
                + c["tasks_without_request"]
            )
            run_["restart_stop_s"] = max(x["stop_s"] for x in info["restarts"])
            run_["restart_start_s"] = max(x["start_s"] for x in info["restarts"])
            run_["proxy_cpu_ms_per_generation"] = None  # not across a restart
            run_["group"] = "all runs"
            run_.update(info, kind="async", concurrency=args.jobs)
            runs.append(run_)
    return {
        "simulator": {"args": sim_args, "task_seconds": args.task_seconds},
        "runs": runs,
        "aggregate_keys": AGGREGATE,
    }


def _item(port: int, tag: str) -> dict[str, Any]:
    return {
        "tag": tag,
        "kind": "async",
        "request": request_for(
            port, "images", tag, POOL_KEY, async_=True, idempotent=True
        ),
    }


def _refused(res: dict[str, Any]) -> bool:
    return bool(res["error"]) and res["error"].startswith("connection refused")
