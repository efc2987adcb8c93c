"""Measure how many slow (slowloris) clients the default setup survives.

    .venv/bin/python -m tests.slow_clients --sources 1 --per-source 3000
    .venv/bin/python -m tests.slow_clients --sources 40 --per-source 150

Starts ``gunicorn -c gunicorn.conf.py`` with the default settings (the simulator is
not needed: only /ping is probed), then opens ``sources x per-source`` connections
from distinct loopback addresses (127.0.0.2 …), each sending a request line and
then one header byte a second, reconnecting as soon as the server drops it. A
probe on 127.0.1.1 times ``GET /ping`` every 0.25 s. Prints the probe latencies
and how many attack connections were open, dropped and refused (429).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import gevent  # noqa: E402

from tests.servers import gunicorn_server  # noqa: E402

stats: Counter[str] = Counter()


def attacker(port: int, source: str, until: float) -> None:
    """One slow client that reconnects whenever it is dropped."""
    while time.monotonic() < until:
        try:
            conn = socket.create_connection(
                ("127.0.0.1", port), timeout=30, source_address=(source, 0)
            )
        except OSError:
            stats["connect_failed"] += 1
            gevent.sleep(0.5)
            continue
        stats["open"] += 1
        try:
            conn.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            conn.settimeout(1.0)
            while time.monotonic() < until:
                conn.sendall(b"a")
                try:
                    data = conn.recv(1024)
                except TimeoutError:
                    continue  # still held: drip the next byte
                refused = data.startswith(b"HTTP/1.1 429")
                stats["refused_429" if refused else "dropped"] += 1
                break
        except OSError:
            stats["dropped"] += 1
        finally:
            stats["open"] -= 1
            conn.close()


def probe(port: int, until: float, latencies: list[float]) -> None:
    """Time GET /ping from an address the attack does not use."""
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            with socket.create_connection(
                ("127.0.0.1", port), timeout=15, source_address=("127.0.1.1", 0)
            ) as conn:
                conn.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
                answer = b""
                while chunk := conn.recv(4096):
                    answer += chunk
                ok = answer.endswith(b"pong")
        except OSError as exc:
            ok = False
            stats[f"probe_{type(exc).__name__}"] += 1
        latencies.append(time.monotonic() - started if ok else float("inf"))
        gevent.sleep(0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=1)
    parser.add_argument("--per-source", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE overrides")
    args = parser.parse_args()
    env = {"GUNICORN_WORKERS": "2", **dict(e.split("=", 1) for e in args.env)}
    with gunicorn_server(env) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        until = time.monotonic() + args.seconds
        latencies: list[float] = []
        jobs = [gevent.spawn(probe, port, until, latencies)]
        for i in range(args.sources):
            source = f"127.0.{2 + i // 250}.{2 + i % 250}"
            jobs += [
                gevent.spawn(attacker, port, source, until)
                for _ in range(args.per_source)
            ]
        peak = 0
        while time.monotonic() < until:
            gevent.sleep(1)
            peak = max(peak, stats["open"])
        gevent.joinall(jobs, timeout=40)
    answered = [x for x in latencies if x != float("inf")]
    print(
        f"attack: {args.sources} source(s) x {args.per_source} = "
        f"{args.sources * args.per_source} slow clients for {args.seconds:g} s; "
        f"peak open {peak}; dropped {stats['dropped']}; 429 {stats['refused_429']}; "
        f"connect failures {stats['connect_failed']}"
    )
    failures = {k: v for k, v in stats.items() if k.startswith("probe_")}
    if failures:
        print(f"probe failures: {failures}")
    if answered:
        median, worst = statistics.median(answered) * 1000, max(answered) * 1000
        print(
            f"/ping: {len(answered)}/{len(latencies)} answered; "
            f"median {median:.0f} ms, max {worst:.0f} ms"
        )
    else:
        print(f"/ping: 0/{len(latencies)} answered")


if __name__ == "__main__":
    main()
