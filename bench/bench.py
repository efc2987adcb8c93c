#!/usr/bin/env python3
"""Load benchmark: the real service (gunicorn + gevent) against the simulator.

    python bench/bench.py [--levels 1,20,500,1000,2000] [--task-seconds 5]
                          [--jitter 0.3] [--out bench/results.json] [--quick]

Starts the simulator (strict mode) and ``gunicorn -c gunicorn.conf.py`` as separate
processes on free loopback ports, fires N concurrent ``POST /v1/images/generations``
per level from a gevent client (one connection per request, all released at once),
then an SSE run and a ``b64_json`` run, and prints a Markdown table (also written
as JSON). See bench/README.md for what every column means.

This file depends on nothing in ``tests/`` and only on the stdlib and gevent.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MODEL = "jimeng-4.0"
DEFAULT_LEVELS = (1, 20, 500, 1000, 2000)
QUICK_LEVELS = (1, 20)
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
SIM_READY = "JIMENG_SIM_LISTENING "
#: server log lines worth counting per run (evidence of trouble in the service)
LOG_PATTERNS = {
    "worker_timeout": re.compile(r"WORKER TIMEOUT"),
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
    "error": re.compile(r"\[ERROR\]| ERROR "),
    "critical": re.compile(r"\[CRITICAL\]| CRITICAL "),
    "too_many_files": re.compile(r"Too many open files|EMFILE"),
    "worker_boot": re.compile(r"Booting worker"),
}
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


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A setup problem worth a clear message (not a measurement)."""


# --------------------------------------------------------------------------- /proc
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


# --------------------------------------------------------------- minimal HTTP client
class HTTPFailure(Exception):
    """A request that produced no complete HTTP response."""


def build_request(
    method: str,
    path: str,
    port: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "User-Agent: jimeng-bench/1",
        "Accept: */*",
        "Connection: close",
        f"Content-Length: {len(payload)}",
    ]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _dechunk(raw: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body so far; return (data, complete)."""
    out, pos = [], 0
    while True:
        nl = raw.find(b"\r\n", pos)
        if nl < 0:
            return b"".join(out), False
        try:
            size = int(raw[pos:nl].split(b";")[0], 16)
        except ValueError as exc:
            raise HTTPFailure("bad chunked encoding") from exc
        if size == 0:
            return b"".join(out), True
        start, end = nl + 2, nl + 2 + size
        if len(raw) < end + 2:
            return b"".join(out), False
        out.append(raw[start:end])
        pos = end + 2


def http_call(
    port: int, request: bytes, timeout: float, watch: bytes | None = None
) -> dict[str, Any]:
    """Send one request on a new connection; time it; never raise.

    Result keys: ok_http (a complete response), status, body, error, phase,
    t_start/t_end (monotonic), wall_start/wall_end, t_connect, t_first_byte,
    t_watch (when *watch* first appeared in the body).
    """
    res: dict[str, Any] = {
        "t_start": time.monotonic(),
        "wall_start": time.time(),
        "status": None,
        "body": b"",
        "error": None,
        "phase": "connect",
        "t_watch": None,
        "t_first_byte": None,
    }
    sock = None
    timer = gevent.Timeout(timeout)
    timer.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect((HOST, port))
        res["t_connect"] = time.monotonic()
        res["phase"] = "send"
        sock.sendall(request)
        res["phase"] = "headers"
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise HTTPFailure("closed before the response headers")
            if res["t_first_byte"] is None:
                res["t_first_byte"] = time.monotonic()
            buf += data
        head, _, raw = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            res["status"] = int(lines[0].split()[1])
        except (IndexError, ValueError) as exc:
            raise HTTPFailure(f"bad status line {lines[0][:60]!r}") from exc
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        res["headers"] = headers
        res["phase"] = "body"
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        length = int(length) if length and not chunked else None
        while True:
            if chunked:
                body, complete = _dechunk(raw)
            else:
                body = raw
                complete = length is not None and len(raw) >= length
            if watch is not None and res["t_watch"] is None and watch in body:
                res["t_watch"] = time.monotonic()
            if complete:
                break
            data = sock.recv(65536)
            if not data:
                if length is None and not chunked:
                    break  # close-delimited body
                raise HTTPFailure("closed before the response body was complete")
            raw += data
        res["body"] = body if length is None else body[:length]
        res["phase"] = "done"
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        res["error"] = f"timeout in {res['phase']} (>{timeout:.0f} s)"
    except HTTPFailure as exc:
        res["error"] = f"{exc} ({res['phase']})"
    except ConnectionResetError:
        res["error"] = f"connection reset ({res['phase']})"
    except ConnectionRefusedError:
        res["error"] = f"connection refused ({res['phase']})"
    except BrokenPipeError:
        res["error"] = f"broken pipe ({res['phase']})"
    except OSError as exc:
        name = type(exc).__name__
        res["error"] = f"{name} errno {exc.errno} ({res['phase']})"
    finally:
        timer.close()
        if sock is not None:
            sock.close()
        res["t_end"] = time.monotonic()
        res["wall_end"] = time.time()
    return res


def http_json(port: int, method: str, path: str, body: Any = None, timeout=30) -> Any:
    res = http_call(port, build_request(method, path, port, body), timeout)
    if res["error"] or res["status"] != 200:
        raise BenchError(
            f"{method} {path} on :{port} failed: "
            f"{res['error'] or res['status']} {res['body'][:200]!r}"
        )
    return json.loads(res["body"])


# ------------------------------------------------------------------------ processes
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen, sig: int, grace: float, name: str) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop within {grace:g} s; killing pid {proc.pid}")
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


class Simulator:
    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        cmd = [sys.executable, "-m", "simulator", "--host", HOST]
        cmd += ["--port", "0", *args]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
        )
        self.cmd = cmd
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,  # Ctrl-C reaches only us; we stop it cleanly
        )
        try:
            with gevent.Timeout(30, BenchError("the simulator did not start in 30 s")):
                while True:
                    line = self.proc.stdout.readline()
                    if line.startswith(SIM_READY):
                        self.base_url = line[len(SIM_READY) :].strip()
                        break
                    if not line and self.proc.poll() is not None:
                        raise BenchError(
                            f"the simulator exited with {self.proc.returncode}; "
                            f"see {log_path}"
                        )
        except BaseException:
            self.stop()
            raise
        self.port = int(self.base_url.rsplit(":", 1)[1])

    def reset(self) -> None:
        http_json(self.port, "POST", "/__sim/reset", {"restore_settings": True})

    def stats(self) -> dict[str, Any]:
        return http_json(self.port, "GET", "/__sim/stats?tasks=1", timeout=60)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, 10, "simulator")
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


class Server:
    """``gunicorn -c gunicorn.conf.py`` with the bench environment."""

    def __init__(self, env: dict[str, str], log_path: Path, expect_workers: int):
        self.env = env
        self.port = int(env["PORT"])
        self.log_path = log_path
        self.cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.tree = ProcessTree(self.proc.pid)
        try:
            self._wait_until_up(expect_workers)
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self, expect_workers: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        request = build_request("GET", "/ping", self.port)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"gunicorn exited with {self.proc.returncode}:\n"
                    + self.log_tail(30)
                )
            res = http_call(self.port, request, 2)
            if res["status"] == 200 and len(self.tree.rescan()) >= expect_workers:
                gevent.sleep(1.0)  # let the last worker finish importing the app
                return
            gevent.sleep(0.2)
        raise BenchError(
            f"gunicorn did not answer /ping with {expect_workers} workers in "
            f"{timeout:g} s:\n" + self.log_tail(30)
        )

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines: int) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        workers = set(self.tree.seen)
        # SIGINT = quick shutdown (SIGTERM would wait up to graceful_timeout for
        # in-flight generations, which is 630 s by default).
        stop_process(self.proc, signal.SIGINT, 15, "gunicorn")
        for pid in workers:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"gunicorn" in cmdline:
                log(f"killing leftover gunicorn worker {pid}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()


def probe_server_config(env: dict[str, str]) -> dict[str, Any]:
    """Read the effective Config values for *env* (also validates it)."""
    code = (
        "import json; from config import Config as C, validate; "
        "s = {k: getattr(C, k) for k in dir(C) if k.isupper()}; validate(s); "
        "print(json.dumps({k: v for k, v in s.items() "
        "if isinstance(v, (int, float, str, bool))}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise BenchError(
            "the server configuration is invalid:\n" + done.stderr.strip()[-2000:]
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def server_env(sim_url: str, port: int, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LOG_LEVEL", "WARNING")  # the access log stays on regardless
    env.setdefault("JIMENG_ENV", "production")
    env.update(
        {
            "HOST": HOST,
            "PORT": str(port),
            "JIMENG_BASE_URL": sim_url,
            "IMAGE_FETCH_ALLOWED_HOSTS": HOST,
        }
    )
    env.update(extra)
    return env


def parse_env_pairs(text: str) -> dict[str, str]:
    pairs = {}
    for item in shlex.split(text):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"expected KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


# ---------------------------------------------------------------------- statistics
def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": sum(values) / len(values),
        "min": min(values),
        "p50": quantile(values, 0.5),
        "p90": quantile(values, 0.9),
        "p99": quantile(values, 0.99),
        "max": max(values),
    }


# ------------------------------------------------------------------------ sampling
class Sampler:
    """Samples master+worker RSS (and PSS) every 100 ms, sockets every second."""

    def __init__(self, tree: ProcessTree, server_port: int, sim_port: int) -> None:
        self.tree = tree
        self.ports = (server_port, sim_port)
        self.stopped = gevent.event.Event()
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self.first_rss_kib = None
        self.samples = 0
        self.peak_sockets: Counter = Counter()
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        last_scan = last_net = 0.0
        while not self.stopped.is_set():
            now = time.monotonic()
            if now - last_scan >= 1.0:
                self.tree.rescan()
                last_scan = now
            pids = self.tree.pids()
            rss = sum(status_kib(pid) for pid in pids)
            pss = sum(pss_kib(pid) for pid in pids)
            if self.first_rss_kib is None:
                self.first_rss_kib = rss
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self.samples += 1
            if now - last_net >= 1.0:
                for key, value in tcp_counts(*self.ports).items():
                    self.peak_sockets[key] = max(self.peak_sockets[key], value)
                last_net = now
            self.stopped.wait(0.1)

    def stop(self) -> None:
        self.stopped.set()
        self.greenlet.join(timeout=5)


# -------------------------------------------------------------------------- a run
def image_body(label: str, i: int, response_format: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "prompt": f"benchmark {label} request {i}: a lighthouse at dusk",
        "response_format": response_format,
    }


def chat_body(label: str, i: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": f"benchmark {label} {i}: a fox"}],
    }


HISTORY_IN_URL = re.compile(r"/img/(\d+)/")


def check_images(res: dict[str, Any], b64: bool) -> tuple[str | None, str | None]:
    """Return (failure reason or None, history id found in the URLs)."""
    try:
        doc = json.loads(res["body"])
    except ValueError:
        return "HTTP 200 with a non-JSON body", None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list) or not data:
        return "HTTP 200 without images", None
    res["images"] = len(data)
    if b64:
        for item in data:
            head = base64.b64decode(str(item.get("b64_json", ""))[:12] + "==")
            if not head.startswith(b"\x89PNG"):
                return "HTTP 200 with b64_json that is not a PNG", None
        return None, None
    url = str(data[0].get("url", ""))
    match = HISTORY_IN_URL.search(url)
    return None, match.group(1) if match else None


def check_sse(res: dict[str, Any]) -> tuple[str | None, str | None]:
    text = res["body"].decode("utf-8", "replace")
    events = [line[5:].strip() for line in text.split("\n") if line.startswith("data:")]
    if not events or events[-1] != "[DONE]":
        return "stream ended without data: [DONE]", None
    history = None
    for event in events[:-1]:
        try:
            doc = json.loads(event)
        except ValueError:
            return "stream with a non-JSON data event", None
        if "error" in doc:
            err = doc["error"] or {}
            return f"stream error event {err.get('code') or err.get('type')}", None
        for choice in doc.get("choices") or []:
            content = (choice.get("delta") or {}).get("content") or ""
            match = HISTORY_IN_URL.search(content)
            if match and history is None:
                history = match.group(1)
    if history is None:
        return "stream without image URLs", None
    res["images"] = len(re.findall(r"!\[image_\d+\]", text))
    return None, history


def error_reason(res: dict[str, Any]) -> str:
    try:
        err = json.loads(res["body"]).get("error") or {}
        code = err.get("code") or err.get("type") or "?"
        res["message"] = str(err.get("message"))[:300]
    except (ValueError, AttributeError):
        code = "non-JSON body"
    return f"HTTP {res['status']} {code}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sim: Simulator | None = None
        self.server: Server | None = None

    # --- one run: N concurrent requests released at once ---
    def run(self, label: str, kind: str, n: int, timeout: float) -> dict[str, Any]:
        sim, server = self.sim, self.server
        assert sim is not None and server is not None
        port = server.port
        sim.reset()
        if kind == "sse":
            path, make_body = "/v1/chat/completions", chat_body
        else:
            path = "/v1/images/generations"
            fmt = "b64_json" if kind == "b64" else "url"

            def make_body(lbl: str, i: int) -> dict[str, Any]:
                return image_body(lbl, i, fmt)

        tag = re.sub(r"[^A-Za-z0-9._-]+", "", label)  # session ids are plain words
        sessions = [f"bench-{tag}-{i}" for i in range(n)]
        requests_ = [
            build_request(
                "POST",
                path,
                port,
                make_body(label, i),
                {
                    "Authorization": f"Bearer {sessions[i]}",
                    "X-Request-ID": sessions[i],
                    **({"Accept": "text/event-stream"} if kind == "sse" else {}),
                },
            )
            for i in range(n)
        ]
        go = gevent.event.Event()
        results: list[dict[str, Any] | None] = [None] * n
        deadline_box: list[float] = []

        def worker(i: int) -> None:
            go.wait()
            left = max(deadline_box[0] - time.monotonic(), 0.1)
            watch = b"data:" if kind == "sse" else None
            results[i] = http_call(port, requests_[i], left, watch)

        greenlets = [gevent.spawn(worker, i) for i in range(n)]
        gevent.sleep(0)  # every greenlet is now parked on the event
        log_offset = server.log_size()
        net_before = net_counters()
        cpu_before = server.tree.cpu()
        sim_before = pid_cpu_ms(sim.proc.pid)
        self_before = self_cpu_ms()
        machine_before = machine_cpu_ms()
        sampler = Sampler(server.tree, port, sim.port)
        t0 = time.monotonic()
        deadline_box.append(t0 + timeout)
        go.set()
        gevent.joinall(greenlets, timeout=timeout + 15)
        wall = time.monotonic() - t0
        for g in greenlets:
            g.kill(block=False)
        gevent.sleep(0.3)  # let the workers finish logging/closing
        sampler.stop()
        cpu_after = server.tree.cpu()
        sim_cpu = pid_cpu_ms(sim.proc.pid) - sim_before
        self_cpu = self_cpu_ms() - self_before
        machine_after = machine_cpu_ms()
        net_after = net_counters()
        stats = sim.stats()
        log_text = server.log_since(log_offset)

        return self._analyse(
            label=label,
            kind=kind,
            n=n,
            results=results,
            sessions=sessions,
            stats=stats,
            wall=wall,
            cpu=ProcessTree.cpu_delta(cpu_before, cpu_after),
            sim_cpu=sim_cpu,
            self_cpu=self_cpu,
            machine={k: machine_after[k] - machine_before[k] for k in machine_after},
            net={k: net_after[k] - net_before[k] for k in net_after},
            sampler=sampler,
            log_text=log_text,
        )

    def _analyse(  # noqa: PLR0913
        self, *, label, kind, n, results, sessions, stats, wall, cpu, sim_cpu,
        self_cpu, machine, net, sampler, log_text,
    ) -> dict[str, Any]:  # fmt: skip
        tasks = stats.get("tasks") or {}
        by_session: dict[str, list[dict[str, Any]]] = {}
        for hid, task in tasks.items():
            task["history_id"] = hid
            by_session.setdefault(task.get("session"), []).append(task)
        failures: Counter = Counter()
        samples: dict[str, str] = {}
        latencies, added, submit_lag, finish_lag, ttfb, planned = [], [], [], [], [], []
        images: Counter = Counter()
        mapped_by = Counter()
        for i, res in enumerate(results):
            if res is None:
                failures["no result (harness timeout)"] += 1
                continue
            reason, history = None, None
            if res["error"]:
                reason = res["error"]
            elif res["status"] != 200:
                reason = error_reason(res)
            elif kind == "sse":
                reason, history = check_sse(res)
            else:
                reason, history = check_images(res, kind == "b64")
            if reason:
                failures[reason] += 1
                samples.setdefault(reason, res.get("message") or sessions[i])
                continue
            images[res.get("images", 0)] += 1
            latency = res["t_end"] - res["t_start"]
            latencies.append(latency)
            if kind == "sse" and res["t_watch"] is not None:
                ttfb.append(res["t_watch"] - res["t_start"])
            task = tasks.get(history) if history else None
            if task is not None:
                mapped_by["url"] += 1
            else:
                candidates = by_session.get(sessions[i]) or []
                task = max(candidates, key=lambda t: t["created"], default=None)
                if task is not None:
                    mapped_by["session"] += 1
            if task is None:
                mapped_by["none"] += 1
                continue
            planned.append(task["planned_seconds"])
            added.append(latency - task["planned_seconds"])
            submit_lag.append(task["created"] - res["wall_start"])
            finish_lag.append(res["wall_end"] - task["finished"])
        ok = len(latencies)
        calls = stats.get("calls", {})
        total_calls = sum(calls.values())
        per_gen = (lambda x: x / ok) if ok else (lambda x: None)
        total_ms = sum(machine.values())
        busy_ms = total_ms - machine.get("idle", 0) - machine.get("iowait", 0)
        irq_ms = machine.get("irq", 0) + machine.get("softirq", 0)
        ours = cpu["total_ms"] + sim_cpu + self_cpu
        multi_task_sessions = sum(
            1 for s in sessions if len(by_session.get(s) or []) > 1
        )
        log_counts = {
            name: len(pattern.findall(log_text))
            for name, pattern in LOG_PATTERNS.items()
        }
        log_samples = [
            line
            for line in log_text.splitlines()
            if any(
                LOG_PATTERNS[k].search(line)
                for k in ("worker_timeout", "error", "critical", "too_many_files")
            )
        ][:8]
        upstream_opens = net["Tcp.ActiveOpens"] - n  # minus the client's own
        return {
            "run": label,
            "kind": kind,
            "concurrency": n,
            "ok": ok,
            "failed": n - ok,
            "failures": dict(failures.most_common()),
            "failure_samples": samples,
            "wall_s": wall,
            "latency_s": summary(latencies),
            "added_latency_s": summary(added),
            "planned_task_s": summary(planned),
            "submit_lag_s": summary(submit_lag),
            "finish_to_response_s": summary(finish_lag),
            "sse_first_data_s": summary(ttfb) if kind == "sse" else None,
            "task_mapping": dict(mapped_by),
            "images_per_response": {str(k): v for k, v in sorted(images.items())},
            "upstream_calls": calls,
            "upstream_calls_total": total_calls,
            "calls_per_generation": per_gen(total_calls),
            "history_calls_per_generation": per_gen(calls.get("history", 0)),
            "submissions": stats.get("submissions"),
            "sessions_with_several_tasks": multi_task_sessions,
            "duplicate_submit_ids": stats.get("duplicate_submit_ids"),
            "violations": len(stats.get("violations") or []),
            "violation_samples": (stats.get("violations") or [])[:5],
            "rejections": len(stats.get("rejections") or []),
            "rejection_samples": (stats.get("rejections") or [])[:5],
            "proxy_cpu_ms": cpu["total_ms"],
            "proxy_cpu_ms_per_generation": per_gen(cpu["total_ms"]),
            "proxy_cpu_ms_from_stat_ticks": cpu["ticks_ms"],
            "proxy_cpu_source": cpu["source"],
            "proxy_cpu_ms_by_pid": {str(k): v for k, v in cpu["per_pid_ms"].items()},
            "peak_rss_mib": sampler.peak_rss_kib / 1024,
            "rss_at_start_mib": (sampler.first_rss_kib or 0) / 1024,
            "peak_pss_mib": sampler.peak_pss_kib / 1024,
            "rss_samples": sampler.samples,
            "workers": len(self.server.tree.workers),
            "simulator_cpu_ms": sim_cpu,
            "simulator_cpu_pct": 100 * sim_cpu / wall / 1000 if wall else None,
            "client_cpu_ms": self_cpu,
            "client_cpu_pct": 100 * self_cpu / wall / 1000 if wall else None,
            "machine_busy_pct": 100 * busy_ms / total_ms if total_ms else None,
            "irq_softirq_pct": 100 * irq_ms / total_ms if total_ms else None,
            "steal_pct": 100 * machine.get("steal", 0) / total_ms if total_ms else None,
            # busy time of neither our three processes nor interrupts: other
            # processes on the machine (their noise is in every figure)
            "other_processes_cpu_ms": max(busy_ms - irq_ms - ours, 0.0),
            "tcp": net,
            "upstream_connections_opened_approx": upstream_opens,
            "peak_sockets": dict(sampler.peak_sockets),
            "server_log": log_counts,
            "server_log_samples": log_samples,
        }


# ------------------------------------------------------------------------- report
def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    m, s = report["machine"], report["server"]
    out = [
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, "
        f"Linux {m['kernel']}, Python {m['python']}, gunicorn "
        f"{m['versions'].get('gunicorn')}, gevent {m['versions'].get('gevent')}; "
        f"load average at start {' '.join(m['loadavg_at_start'])}.",
        f"Server: {s['workers_running']} gevent workers (GUNICORN_WORKERS="
        f"{s['config'].get('GUNICORN_WORKERS')}), worker_connections "
        f"{s['config'].get('GUNICORN_WORKER_CONNECTIONS')}, backlog "
        f"{s['config'].get('GUNICORN_BACKLOG')}, LOG_LEVEL "
        f"{s['config'].get('LOG_LEVEL')}; poll first/interval/max "
        f"{s['config'].get('POLL_FIRST_DELAY')}/{s['config'].get('POLL_INTERVAL')}/"
        f"{s['config'].get('POLL_MAX_INTERVAL')} s, adaptive "
        f"{s['config'].get('POLL_ADAPTIVE')}. Extra env: "
        f"{' '.join(f'{k}={v}' for k, v in s['extra_env'].items()) or 'none'}.",
        f"Simulator: task {report['simulator']['task_seconds']} s ± "
        f"{report['simulator']['jitter'] * 100:.0f} %, strict. Git "
        f"{m.get('git')}.",
        "",
        "| run | c | ok | fail | p50 s | p99 s | added mean s | added p99 s "
        "| calls/gen | CPU ms/gen | peak RSS MiB | violations |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    runs = report["runs"]
    for r in runs:
        out.append(
            f"| {r['run']} | {r['concurrency']} | {r['ok']} | {r['failed']} "
            f"| {fmt(r['latency_s'].get('p50'))} | {fmt(r['latency_s'].get('p99'))} "
            f"| {fmt(r['added_latency_s'].get('mean'))} "
            f"| {fmt(r['added_latency_s'].get('p99'))} "
            f"| {fmt(r['calls_per_generation'])} "
            f"| {fmt(r['proxy_cpu_ms_per_generation'], 1)} "
            f"| {fmt(r['peak_rss_mib'], 0)} | {r['violations']} |"
        )
    sse = [r for r in runs if r["kind"] == "sse"]
    if sse:
        out += [
            "",
            "| SSE run | c | first `data:` p50 s | first `data:` p99 s "
            "| total p50 s | total p99 s |",
            "|---|---|---|---|---|---|",
        ]
        for r in sse:
            f = r["sse_first_data_s"] or {}
            out.append(
                f"| {r['run']} | {r['concurrency']} | {fmt(f.get('p50'), 3)} "
                f"| {fmt(f.get('p99'), 3)} | {fmt(r['latency_s'].get('p50'))} "
                f"| {fmt(r['latency_s'].get('p99'))} |"
            )
    out += [
        "",
        "Diagnostics (where the time and the load go):",
        "",
        "| run | wall s | submit lag s | finish→response s | history/gen "
        "| upstream conns opened | peak conns in | listen overflows "
        "| CPU ms master/workers "
        "| client CPU % | sim CPU % | machine busy % | other procs CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        split = "/".join(f"{v:.0f}" for v in r["proxy_cpu_ms_by_pid"].values())
        out.append(
            f"| {r['run']} | {fmt(r['wall_s'], 1)} "
            f"| {fmt(r['submit_lag_s'].get('mean'))} "
            f"| {fmt(r['finish_to_response_s'].get('mean'))} "
            f"| {fmt(r['history_calls_per_generation'])} "
            f"| {r['upstream_connections_opened_approx']} "
            f"| {r['peak_sockets'].get('server_established', 0)} "
            f"| {r['tcp'].get('TcpExt.ListenOverflows', 0)} | {split} "
            f"| {fmt(r['client_cpu_pct'], 0)} | {fmt(r['simulator_cpu_pct'], 0)} "
            f"| {fmt(r['machine_busy_pct'], 0)} "
            f"| {fmt(r['other_processes_cpu_ms'] / 1000, 1)} |"
        )
    failing = [r for r in runs if r["failures"]]
    if failing:
        out += ["", "Failures:"]
        for r in failing:
            reasons = ", ".join(f"{k}: {v}" for k, v in r["failures"].items())
            out.append(f"- {r['run']}: {reasons}")
    out += ["", f"Command: `{report['command']}` ({report['duration_s']:.0f} s)."]
    return "\n".join(out)


def warnings_for(r: dict[str, Any]) -> list[str]:
    notes = []
    long_enough = r["wall_s"] >= 1.0  # percentages of a few ms mean nothing
    if long_enough and (r["client_cpu_pct"] or 0) > 80:
        notes.append("the load generator used >80 % of a core: it may be a bottleneck")
    if long_enough and (r["simulator_cpu_pct"] or 0) > 85:
        notes.append("the simulator used >85 % of a core: its queueing adds latency")
    if long_enough and r["other_processes_cpu_ms"] > 0.2 * r["wall_s"] * 1000:
        notes.append(
            f"other processes used {r['other_processes_cpu_ms'] / 1000:.1f} CPU-s "
            "during the run: figures are noisier than usual"
        )
    if long_enough and (r["steal_pct"] or 0) > 5:
        notes.append(f"the hypervisor stole {r['steal_pct']:.0f} % of the CPU time")
    if r["violations"]:
        notes.append(f"{r['violations']} strict-mode violations")
    if r["server_log"].get("worker_timeout"):
        notes.append("gunicorn killed a worker (WORKER TIMEOUT)")
    if r["task_mapping"].get("none"):
        notes.append(f"{r['task_mapping']['none']} responses had no simulator task")
    return notes


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Server env: the harness passes its own environment through, then sets "
            "HOST, PORT, JIMENG_BASE_URL and IMAGE_FETCH_ALLOWED_HOSTS (and "
            "LOG_LEVEL=WARNING unless set); BENCH_SERVER_ENV='K=V K2=V2' and "
            "--server-env K=V override everything."
        ),
    )
    parser.add_argument("--levels", help="comma list (default 1,20,500,1000,2000)")
    parser.add_argument("--task-seconds", type=float, help="simulated task (default 5)")
    parser.add_argument("--jitter", type=float, default=0.3, help="±fraction (0.3)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument(
        "--quick", action="store_true", help="levels 1,20, task 1 s, SSE/b64 N=5"
    )
    parser.add_argument("--sse-n", type=int, help="streamed chat requests (20; 0=skip)")
    parser.add_argument("--b64-n", type=int, help="b64_json requests (20; 0=skip)")
    parser.add_argument(
        "--level-timeout",
        type=float,
        help="seconds a run may take (default 60 + 3 × the longest task)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="unmeasured generations before the levels (default 0: a cold server)",
    )
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="K=V", help="repeatable"
    )
    parser.add_argument("--sim-arg", action="append", default=[], help="extra flag")
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs")
    args = parser.parse_args(argv)
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
    default_n = 5 if args.quick else 20
    args.sse_n = default_n if args.sse_n is None else args.sse_n
    args.b64_n = default_n if args.b64_n is None else args.b64_n
    if args.level_timeout is None:
        args.level_timeout = 60 + 3 * args.task_seconds * (1 + args.jitter)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    biggest = max([*args.levels, args.sse_n, args.b64_n])
    nofile = raise_nofile(biggest * 2 + 512)
    extra_env = parse_env_pairs(os.environ.get("BENCH_SERVER_ENV", ""))
    extra_env.update(parse_env_pairs(" ".join(shlex.quote(p) for p in args.server_env)))
    logdir = Path(tempfile.mkdtemp(prefix="jimeng-bench-"))
    bench = Bench(args)
    report: dict[str, Any] = {
        "command": " ".join(
            ["python", shlex.quote(os.path.relpath(__file__, ROOT))]
            + [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)]
        ),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_facts(),
        "rlimit_nofile": nofile,
        "runs": [],
    }
    keep_logs = args.keep_logs
    exit_code = 0
    try:
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
        log(f"starting the simulator ({' '.join(sim_args)})")
        bench.sim = Simulator(sim_args, logdir / "simulator.log")
        report["simulator"] = {
            "url": bench.sim.base_url,
            "args": sim_args,
            "task_seconds": args.task_seconds,
            "jitter": args.jitter,
        }
        env = server_env(bench.sim.base_url, free_port(), extra_env)
        config = probe_server_config(env)
        log(
            f"starting gunicorn on :{env['PORT']} with {config['GUNICORN_WORKERS']} "
            f"workers × {config['GUNICORN_WORKER_CONNECTIONS']} connections"
        )
        bench.server = Server(env, logdir / "gunicorn.log", config["GUNICORN_WORKERS"])
        config_keys = set(config)
        report["server"] = {
            "command": "gunicorn -c gunicorn.conf.py",
            "workers_running": len(bench.server.tree.workers),
            "config": config,
            "extra_env": extra_env,
            "env_set": {k: env[k] for k in sorted(config_keys & set(env))},
        }
        timeout = args.level_timeout
        if args.warmup:
            log(f"warm-up: {args.warmup} generations (not reported)")
            bench.run("warmup", "images", args.warmup, timeout)
        plan = [(f"c={n}", "images", n) for n in args.levels]
        if args.sse_n:
            plan.append((f"sse c={args.sse_n}", "sse", args.sse_n))
        if args.b64_n:
            plan.append((f"b64_json c={args.b64_n}", "b64", args.b64_n))
        for label, kind, n in plan:
            log(f"{label}: {n} concurrent {kind} requests (timeout {timeout:.0f} s)")
            result = bench.run(label, kind, n, timeout)
            result["run"] = label
            report["runs"].append(result)
            lat, add = result["latency_s"], result["added_latency_s"]
            log(
                f"{label}: {result['ok']} ok, {result['failed']} failed, "
                f"p50 {fmt(lat.get('p50'))} s, added {fmt(add.get('mean'))} s, "
                f"calls/gen {fmt(result['calls_per_generation'])}, CPU ms/gen "
                f"{fmt(result['proxy_cpu_ms_per_generation'], 1)}, peak RSS "
                f"{result['peak_rss_mib']:.0f} MiB in {result['wall_s']:.1f} s"
            )
            if result["failures"]:
                log(f"  failures: {result['failures']}")
                keep_logs = True
            for note in warnings_for(result):
                log(f"  note: {note}")
            if bench.server.proc.poll() is not None:
                raise BenchError(
                    f"gunicorn exited ({bench.server.proc.returncode}) during {label}"
                )
            gevent.sleep(1.0)  # let sockets and TIME_WAITs settle between runs
    except (KeyboardInterrupt, SystemExit) as exc:
        log("interrupted; stopping the server and the simulator")
        exit_code = exc.code if isinstance(exc, SystemExit) else 130
        keep_logs = True
    except BenchError as exc:
        log(f"error: {exc}")
        exit_code = 2
        keep_logs = True
    except Exception:
        keep_logs = True
        raise
    finally:
        if bench.server is not None:
            report["server_log_tail"] = bench.server.log_tail(20).splitlines()
            bench.server.stop()
        if bench.sim is not None:
            bench.sim.stop()
        report["duration_s"] = time.monotonic() - started
        if keep_logs:
            log(f"logs kept in {logdir}")
        else:
            shutil.rmtree(logdir, ignore_errors=True)
    if report["runs"]:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(markdown(report))
        log(f"wrote {out}")
    return exit_code  # failed requests are results (in the table), not errors


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
