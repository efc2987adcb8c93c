"""What every scenario shares: the request bodies, the ways of sending them
(all at once, a closed loop of users, an open loop at a rate, async tasks
polled until they end) and one measured run."""

from __future__ import annotations

import base64
import json
import random
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

from .. import MODEL, log
from ..analysis import analyse
from ..client import build_request, http_call, try_json
from ..meter import Meter
from ..processes import Stack

POOL_KEY = "bench-key-1"
#: when a list, every measured run appends what it analysed (``--record``)
RECORD: list[dict[str, Any]] | None = None
#: server settings that are durations, scaled with the simulator's time_scale
SCALED = {  # key: lowest value config.py accepts
    "POLL_FIRST_DELAY": 0.0,
    "POLL_EXPECTED_SECONDS": 1.0,
    "POLL_FINISHING_INTERVAL": 0.05,
    "POLL_QUEUED_INTERVAL": 0.05,
    "POLL_MAX_INTERVAL": 0.05,
    "POLL_DENSE_WINDOW": 0.0,
    "POLL_MIN_INTERVAL": 0.0,
    "STALL_SECONDS": 1.0,
}


def pool_env(accounts: int, cap: int | None = None) -> dict[str, str]:
    """Pooled mode: *accounts* session ids on the server, one API key."""
    env = {
        "JIMENG_SESSION_IDS": ",".join(f"bench-acct-{i}" for i in range(accounts)),
        "API_KEYS": POOL_KEY,
    }
    if cap is not None:
        env["POOL_MAX_CONCURRENCY"] = str(cap)
    return env


def scaled_env(
    config: dict[str, Any], scale: float
) -> tuple[dict[str, str], list[str]]:
    """The poll settings times *scale*; and the ones clamped at config's floor."""
    env, clamped = {}, []
    for key, floor in SCALED.items():
        value = float(config[key]) * scale
        if value < floor:
            clamped.append(key)
            value = floor
        env[key] = f"{value:.6g}"
    return env, clamped


def tiny_png(size: int = 64) -> bytes:
    """A *size*² RGB PNG (a gradient), stdlib only: the reference of an edit."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 4 % 256, 128)) for x in range(size))
        for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    head = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + idat + chunk(b"IEND", b"")


REFERENCE = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
PATHS = {
    "sse": "/v1/chat/completions",
    "chat": "/v1/chat/completions",
    "edits": "/v1/images/edits",
}


def body_for(kind: str, tag: str, n: int | None = None, words: str = "") -> dict:
    prompt = f"benchmark {tag}: {words or 'a lighthouse at dusk'}"
    if kind == "edits":
        body: dict[str, Any] = {
            "model": MODEL,
            "prompt": prompt,
            "image": REFERENCE,
            "response_format": "url",
        }
        if n is not None:
            body["n"] = n
        return body
    if kind == "sse" or kind == "chat":
        body: dict[str, Any] = {
            "model": MODEL,
            "stream": kind == "sse",
            "messages": [{"role": "user", "content": prompt}],
        }
    else:
        body = {
            "model": MODEL,
            "prompt": prompt,
            "response_format": "b64_json" if kind == "b64" else "url",
        }
    if n is not None:
        body["n"] = n
    return body


def request_for(
    port: int,
    kind: str,
    tag: str,
    auth: str,
    *,
    n: int | None = None,
    async_: bool = False,
    idempotent: bool = False,
    words: str = "",
) -> bytes:
    path = PATHS.get(kind, "/v1/images/generations")
    headers = {"Authorization": f"Bearer {auth}", "X-Request-ID": tag}
    if kind == "sse":
        headers["Accept"] = "text/event-stream"
    if async_:
        headers["Prefer"] = "respond-async"
    if idempotent:
        headers["Idempotency-Key"] = f"bench-{tag}"
    return build_request("POST", path, port, body_for(kind, tag, n, words), headers)


def send(port: int, item: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send ``item["request"]``; keep the result in ``item["res"]``."""
    sse = item["kind"] == "sse"
    item["res"] = http_call(
        port, item["request"], timeout, b"data:" if sse else None, arrivals=sse
    )
    return item


def release_at_once(port: int, items: list[dict[str, Any]], timeout: float) -> None:
    """Every request on its own connection, all released by one event."""
    go = gevent.event.Event()
    deadline: list[float] = []

    def worker(item: dict[str, Any]) -> None:
        go.wait()
        send(port, item, max(deadline[0] - time.monotonic(), 0.1))

    greenlets = [gevent.spawn(worker, item) for item in items]
    gevent.sleep(0)  # every greenlet is parked on the event now
    deadline.append(time.monotonic() + timeout)
    go.set()
    gevent.joinall(greenlets, timeout=timeout + 15)
    for g in greenlets:
        g.kill(block=False)


def follow_task(
    port: int, item: dict[str, Any], auth: str, every: float, until: float
) -> None:
    """After a 202: read ``GET /v1/tasks/{id}`` every *every* s until the task
    ends (``item["task"]``) or *until* (monotonic) passes (``item["lost"]``)."""
    res = item["res"]
    doc = try_json(res) if res and not res["error"] else None
    if res is None or res["error"] or res["status"] != 202 or not isinstance(doc, dict):
        return  # not accepted: classify() reports the HTTP failure
    task_id = doc.get("id")
    item["task_id"], item["task"] = task_id, doc
    request = build_request(
        "GET", f"/v1/tasks/{task_id}", port, headers={"Authorization": f"Bearer {auth}"}
    )
    misses = 0
    while time.monotonic() < until:
        if item["task"].get("status") in ("completed", "failed", "cancelled"):
            item["t_done"], item["wall_done"] = time.monotonic(), time.time()
            return
        gevent.sleep(every)
        got = http_call(port, request, 30)
        body = try_json(got) if not got["error"] else None
        if got["status"] == 200 and isinstance(body, dict):
            item["task"] = body
        elif got["status"] == 404:
            misses += 1
            if misses >= 3:
                item["lost"] = "lost: task 404"
                return
        # connection errors (a restart): keep asking until *until*
    status = item["task"].get("status")
    item["lost"] = f"lost: task still {status} after the drain"


def run_measured(
    stack: Stack,
    label: str,
    work: Callable[[], list[dict[str, Any]]],
    *,
    time_scale: float = 1.0,
    reset: bool = True,
    series_every: float = 0.5,
    profile: Any = None,
) -> dict[str, Any]:
    """Reset the simulator, run *work* inside a measurement window, analyse."""
    sim, server = stack.sim, stack.server
    assert sim is not None and server is not None
    if reset:
        sim.reset()
    offset = server.log_size()
    meter = Meter(
        server.tree, sim.proc.pid, (server.port, sim.port), series_every=series_every
    ).start()
    if profile is not None:
        profile.start(server.tree)
    items = work()
    gevent.sleep(0.3)  # let the workers finish logging and closing
    figures = meter.stop()
    stats = sim.stats()
    server = stack.server  # a restart replaces it
    log_text = server.log_since(offset) if server.log_path.exists() else ""
    run = analyse(label, items, stats, figures, log_text, time_scale)
    if RECORD is not None:
        RECORD.append(recorded(label, items, stats, figures, time_scale))
    if profile is not None:
        run["profile"] = profile.stop()
    run["workers"] = len(server.tree.workers)
    log_run(run)
    if server.proc.poll() is not None:
        raise RuntimeError(f"gunicorn exited ({server.proc.returncode}) during {label}")
    return run


def log_run(run: dict[str, Any]) -> None:
    lat, add = run["latency_s"], run["added_latency_s"]

    def f(x: Any, d: int = 2) -> str:
        return "–" if x is None else f"{x:.{d}f}"

    log(
        f"{run['run']}: {run['ok']} ok, {run['failed']} failed, p50 {f(lat.get('p50'))}"
        f" s, added {f(add.get('mean'))} s, calls/gen {f(run['calls_per_generation'])},"
        f" CPU ms/gen {f(run['proxy_cpu_ms_per_generation'], 1)}, peak RSS "
        f"{run['peak_rss_mib']:.0f} MiB in {run['wall_s']:.1f} s"
    )
    if run["failures"]:
        log(f"  failures: {json.dumps(run['failures'])[:400]}")


def jitter(rng: random.Random, low: float, high: float) -> float:
    return rng.uniform(low, high) if high > low else low


def recorded(
    label: str,
    items: list[dict[str, Any]],
    stats: dict[str, Any],
    figures: dict[str, Any],
    time_scale: float,
) -> dict[str, Any]:
    """A run as JSON: ``analyse(**recorded)`` gives the same figures again."""
    keep = []
    for item in items:
        res = dict(item.get("res") or {}) or None
        if res is not None:
            res["body"] = res["body"].decode("utf-8", "replace")
        keep.append({k: v for k, v in item.items() if k != "request"} | {"res": res})
    return {
        "label": label,
        "items": keep,
        "stats": stats,
        "meter": figures,
        "time_scale": time_scale,
    }


def replay(record: dict[str, Any]) -> dict[str, Any]:
    """Analyse a recorded run again (bodies back to bytes)."""
    items = []
    for item in record["items"]:
        item = dict(item)
        if item.get("res"):
            item["res"] = dict(item["res"], body=item["res"]["body"].encode())
        items.append(item)
    return analyse(
        record["label"],
        items,
        record["stats"],
        record["meter"],
        "",
        record["time_scale"],
    )
