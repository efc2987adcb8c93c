"""A measurement window: CPU of the server tree, the simulator, this process and
the machine, RSS over time and TCP counters between ``start()`` and ``stop()``."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import gevent
import gevent.event

from .procfs import (
    ProcessTree,
    machine_cpu_ms,
    net_counters,
    pid_cpu_ms,
    pss_kib,
    self_cpu_ms,
    status_kib,
    tcp_counts,
)


class Sampler:
    """Samples master+worker RSS (and PSS) every *interval* s, sockets every
    second; keeps the peaks and a series of ``(seconds since start, RSS MiB,
    PSS MiB)`` thinned to one point per *series_every* seconds."""

    def __init__(
        self,
        tree: ProcessTree,
        server_port: int,
        sim_port: int,
        interval: float = 0.1,
        series_every: float = 0.5,
    ) -> None:
        self.tree = tree
        self.ports = (server_port, sim_port)
        self.interval, self.series_every = interval, series_every
        self.stopped = gevent.event.Event()
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self.first_rss_kib: int | None = None
        self.samples = 0
        self.series: list[tuple[float, float, float]] = []
        self.peak_sockets: Counter = Counter()
        self.t0 = time.monotonic()
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        last_scan = last_net = last_point = -1e9
        while not self.stopped.is_set():
            now = time.monotonic()
            if now - last_scan >= 1.0:
                self.tree.rescan()
                last_scan = now
            pids = self.tree.pids()
            rss = sum(status_kib(pid) for pid in pids)
            point = now - last_point >= self.series_every
            pss = sum(pss_kib(pid) for pid in pids) if point or not self.samples else 0
            if self.first_rss_kib is None:
                self.first_rss_kib = rss
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self.samples += 1
            if point and rss:
                self.series.append(
                    (
                        round(now - self.t0, 2),
                        round(rss / 1024, 2),
                        round(pss / 1024, 2),
                    )
                )
                last_point = now
            if now - last_net >= 1.0:
                for key, value in tcp_counts(*self.ports).items():
                    self.peak_sockets[key] = max(self.peak_sockets[key], value)
                last_net = now
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
        self.greenlet.join(timeout=5)


class Meter:
    """CPU of the server tree, the simulator, this process and the machine,
    RSS and TCP counters between ``start()`` and ``stop()``."""

    def __init__(
        self,
        tree: ProcessTree,
        sim_pid: int,
        ports: tuple[int, int],
        interval: float = 0.1,
        series_every: float = 0.5,
    ) -> None:
        self.tree, self.sim_pid, self.ports = tree, sim_pid, ports
        self.interval, self.series_every = interval, series_every

    def start(self) -> Meter:
        self.net = net_counters()
        self.cpu = self.tree.cpu()
        self.sim = pid_cpu_ms(self.sim_pid)
        self.me = self_cpu_ms()
        self.machine = machine_cpu_ms()
        self.sampler = Sampler(self.tree, *self.ports, self.interval, self.series_every)
        self.t0 = time.monotonic()
        return self

    def stop(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        self.sampler.stop()
        cpu = ProcessTree.cpu_delta(self.cpu, self.tree.cpu())
        sim = pid_cpu_ms(self.sim_pid) - self.sim
        me = self_cpu_ms() - self.me
        after = machine_cpu_ms()
        machine = {k: after[k] - self.machine[k] for k in after}
        net_after = net_counters()
        total = sum(machine.values())
        busy = total - machine.get("idle", 0) - machine.get("iowait", 0)
        irq = machine.get("irq", 0) + machine.get("softirq", 0)
        s = self.sampler
        return {
            "wall_s": wall,
            "proxy_cpu_ms": cpu["total_ms"],
            "proxy_cpu_ms_from_stat_ticks": cpu["ticks_ms"],
            "proxy_cpu_source": cpu["source"],
            "proxy_cpu_ms_by_pid": {str(k): v for k, v in cpu["per_pid_ms"].items()},
            "simulator_cpu_ms": sim,
            "simulator_cpu_pct": 100 * sim / wall / 1000 if wall else None,
            "client_cpu_ms": me,
            "client_cpu_pct": 100 * me / wall / 1000 if wall else None,
            "machine_busy_pct": 100 * busy / total if total else None,
            "steal_pct": 100 * machine.get("steal", 0) / total if total else None,
            # busy time of neither our three processes nor interrupts: other
            # processes on the machine (their noise is in every figure)
            "other_processes_cpu_ms": max(busy - irq - cpu["total_ms"] - sim - me, 0.0),
            "tcp": {k: net_after[k] - self.net[k] for k in net_after},
            "peak_rss_mib": s.peak_rss_kib / 1024,
            "rss_at_start_mib": (s.first_rss_kib or 0) / 1024,
            "peak_pss_mib": s.peak_pss_kib / 1024,
            "rss_series": s.series,
            "peak_sockets": dict(s.peak_sockets),
        }
