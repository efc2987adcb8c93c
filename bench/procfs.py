"""What the kernel says about our processes and the machine: per-process CPU
(ns-precise), RSS/PSS, sockets, TCP counters, machine facts, and a sampler of
RSS over time. Linux only (/proc)."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import ROOT, log

TICK = os.sysconf("SC_CLK_TCK")
#: kernel TCP counters (system-wide in this network namespace)
NET_COUNTERS = (
    "Tcp.ActiveOpens",
    "Tcp.PassiveOpens",
    "Tcp.AttemptFails",
    "Tcp.EstabResets",
    "Tcp.OutRsts",
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPBacklogDrop",
    "TcpExt.TCPAbortOnData",
)


def raise_nofile(needed: int) -> tuple[int, int]:
    """Raise our soft RLIMIT_NOFILE (children inherit it); return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(needed, 65536)
    target = min(target, 1 << 20)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < needed:
        log(f"warning: RLIMIT_NOFILE is {soft}, the largest level wants ~{needed}")
    return soft, hard


def proc_stat(pid: int) -> dict[str, int] | None:
    """utime/stime/cutime/cstime (ticks), ppid and rss pages of *pid*, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state) of proc(5)
    return {
        "ppid": int(fields[1]),
        "utime": int(fields[11]),
        "stime": int(fields[12]),
        "cutime": int(fields[13]),
        "cstime": int(fields[14]),
    }


def children_of(pid: int) -> list[int]:
    """Direct children of *pid* (scans /proc: this kernel has no .../children)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None and st["ppid"] == pid:
                found.append(int(entry))
    return sorted(found)


def status_kib(pid: int, key: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(key.encode() + b":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_cpu_ns(pid: int) -> int:
    """CPU time of process *pid* (all its threads, living or ended) in ns.

    Reads the kernel's process CPU clock of another process (the clockid that
    ``clock_getcpuclockid(pid)`` returns): the exact on-CPU time that ``utime+stime``
    in /proc/<pid>/stat round to 10 ms ticks. 0 if it cannot be read.
    """
    try:
        return int(time.clock_gettime((~pid << 3) | 2) * 1e9)  # CPUCLOCK_SCHED
    except (OSError, OverflowError, ValueError):
        return 0


class ProcessTree:
    """The gunicorn master and its workers, as seen through /proc."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.workers: list[int] = []
        self.seen: set[int] = set()
        self.rescan()

    def rescan(self) -> list[int]:
        self.workers = children_of(self.master)
        self.seen.update(self.workers)
        return self.workers

    def pids(self) -> list[int]:
        return [self.master, *self.workers]

    def cpu(self) -> dict[str, Any]:
        """Per-process CPU ticks (utime+stime) plus reaped children of the master."""
        self.rescan()
        per_pid, reaped = {}, 0
        for pid in self.pids():
            st = proc_stat(pid)
            if st is None:
                continue
            per_pid[pid] = st["utime"] + st["stime"]
            if pid == self.master:
                reaped = st["cutime"] + st["cstime"]
        sched = {pid: process_cpu_ns(pid) for pid in self.pids()}
        return {"ticks": per_pid, "reaped": reaped, "sched_ns": sched}

    @staticmethod
    def cpu_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """CPU ms spent between two snapshots, in total and per process."""
        pids = set(before["ticks"]) | set(after["ticks"])
        per = {}
        for pid in pids:
            start = before["ticks"].get(pid, 0)
            end = after["ticks"].get(pid, start)  # died: counted via "reaped"
            per[pid] = (end - start) * 1000 / TICK
        # a worker that died in between is in `reaped` with its whole life: take
        # out what it had used before the run
        dead = set(before["ticks"]) - set(after["ticks"])
        reaped_ticks = after["reaped"] - before["reaped"]
        reaped_ticks -= sum(before["ticks"][pid] for pid in dead) if reaped_ticks else 0
        reaped = max(reaped_ticks, 0) * 1000 / TICK
        ticks_total = sum(per.values()) + reaped
        sched_before, sched_after = before["sched_ns"], after["sched_ns"]
        if any(sched_after.values()):
            # ns-precise process CPU clocks; a worker that died in between is
            # known only by its reaped ticks
            per_sched = {
                pid: (ns - sched_before.get(pid, 0)) / 1e6
                for pid, ns in sched_after.items()
            }
            total = sum(per_sched.values()) + reaped
            per, source = per_sched, "cpu-clock"
        else:
            total, source = ticks_total, "stat"
        return {
            "total_ms": total,
            "per_pid_ms": per,
            "ticks_ms": ticks_total,
            "source": source,
        }


def pid_cpu_ms(pid: int) -> float:
    ns = process_cpu_ns(pid)
    if ns:
        return ns / 1e6
    st = proc_stat(pid)
    return 0.0 if st is None else (st["utime"] + st["stime"]) * 1000 / TICK


def self_cpu_ms() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime + ru.ru_stime) * 1000


CPU_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_cpu_ms() -> dict[str, float]:
    """CPU ms of the whole machine since boot per /proc/stat column."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:9]]
    return {k: v * 1000 / TICK for k, v in zip(CPU_COLUMNS, parts, strict=False)}


def net_counters() -> dict[str, int]:
    values: dict[str, int] = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for names, nums in zip(lines[::2], lines[1::2], strict=False):
            prefix, _, keys = names.partition(":")
            _, _, vals = nums.partition(":")
            for key, val in zip(keys.split(), vals.split(), strict=False):
                try:
                    values[f"{prefix}.{key}"] = int(val)
                except ValueError:
                    pass
    return {k: values.get(k, 0) for k in NET_COUNTERS}


def tcp_counts(server_port: int, sim_port: int) -> dict[str, int]:
    """Sockets on loopback: accepted client connections and proxy→simulator ones."""
    counts = Counter()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path, "rb") as f:
                next(f)
                for line in f:
                    parts = line.split(None, 4)
                    local_port = int(parts[1].rsplit(b":", 1)[1], 16)
                    remote_port = int(parts[2].rsplit(b":", 1)[1], 16)
                    state = parts[3]
                    if local_port == server_port:
                        if state == b"01":
                            counts["server_established"] += 1
                        elif state == b"06":
                            counts["server_time_wait"] += 1
                    elif remote_port == sim_port:
                        if state == b"01":
                            counts["upstream_established"] += 1
                        elif state == b"06":
                            counts["upstream_time_wait"] += 1
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return dict(counts)


def machine_facts() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    versions = {}
    for name in ("gevent", "gunicorn", "flask", "requests", "urllib3", "werkzeug"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - optional facts
            versions[name] = None
    return {
        "nproc": affinity,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(mem_kib / 1024**2, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "somaxconn": _read_int("/proc/sys/net/core/somaxconn"),
        "tcp_max_syn_backlog": _read_int("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
        "ip_local_port_range": _read_text("/proc/sys/net/ipv4/ip_local_port_range"),
        "versions": versions,
        "git": _git_revision(),
    }


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
    ).stdout.strip()


def _git_revision() -> str | None:
    try:
        rev = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return f"{rev}{'+dirty' if dirty else ''}" if rev else None
    except (OSError, subprocess.SubprocessError):
        return None
