"""The simulator and ``gunicorn -c gunicorn.conf.py`` as child processes on free
loopback ports, each in its own session (Ctrl-C reaches only the harness, which
stops them cleanly), with their logs in a temporary directory."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent

from . import HOST, ROOT, BenchError, log
from .client import build_request, http_call, http_json
from .procfs import ProcessTree

SIM_READY = "JIMENG_SIM_LISTENING "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen, sig: int, grace: float, name: str) -> bool:
    """Signal *proc* and wait; kill it after *grace* s. True if it stopped by itself."""
    if proc.poll() is not None:
        return True
    try:
        proc.send_signal(sig)
        proc.wait(timeout=grace)
        return True
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop within {grace:g} s; killing pid {proc.pid}")
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass
    return False


class Simulator:
    """``python -m simulator --port 0 ARGS``; ``base_url`` once it listens."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = list(args)
        self.log_path = log_path
        cmd = [sys.executable, "-m", "simulator", "--host", HOST, "--port", "0", *args]
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
            start_new_session=True,
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

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return http_json(self.port, "POST", "/__sim/config", knobs)

    def stats(self, tasks: bool = True) -> dict[str, Any]:
        path = "/__sim/stats?tasks=1" if tasks else "/__sim/stats?tasks=0"
        return http_json(self.port, "GET", path, timeout=120)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, 10, "simulator")
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


class Server:
    """``gunicorn -c gunicorn.conf.py`` in *root* (default: this checkout)."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        expect_workers: int,
        root: Path = ROOT,
    ) -> None:
        self.env = env
        self.port = int(env["PORT"])
        self.log_path = log_path
        self.root = root
        self.cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = time.monotonic()
        self.tree = ProcessTree(self.proc.pid)
        try:
            self._wait_until_up(expect_workers)
        except BaseException:
            self.stop()
            raise
        self.ready_s = time.monotonic() - self.started

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

    def terminate(self, grace: float = 60) -> float:
        """SIGTERM (graceful: in-flight requests may finish); seconds to exit."""
        t0 = time.monotonic()
        stop_process(self.proc, signal.SIGTERM, grace, "gunicorn")
        self._reap_workers()
        self._log.close()
        return time.monotonic() - t0

    def stop(self) -> None:
        # SIGINT = quick shutdown (SIGTERM waits up to graceful_timeout for
        # in-flight generations, 630 s by default).
        stop_process(self.proc, signal.SIGINT, 15, "gunicorn")
        self._reap_workers()
        self._log.close()

    def _reap_workers(self) -> None:
        for pid in set(self.tree.seen):
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


def probe_server_config(env: dict[str, str], root: Path = ROOT) -> dict[str, Any]:
    """Read the effective Config values for *env* (also validates it)."""
    code = (
        "import json; from config import Config as C, validate; "
        "s = {k: getattr(C, k) for k in dir(C) if k.isupper()}; validate(s); "
        "print(json.dumps({k: v for k, v in s.items() "
        "if isinstance(v, (int, float, str, bool))}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
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


SECRET_KEYS = ("JIMENG_SESSION_IDS", "API_KEYS", "STORE_SECRET", "METRICS_TOKEN")


def server_env(
    sim_url: str, port: int, data_dir: Path, extra: dict[str, str]
) -> dict[str, str]:
    """The harness's environment, then the bench's settings, then *extra*."""
    env = dict(os.environ)
    env.setdefault("LOG_LEVEL", "WARNING")  # the access log stays on regardless
    env.setdefault("JIMENG_ENV", "production")
    for key in (*SECRET_KEYS, "JIMENG_SESSION_FILE", "STORE_URL", "WEBHOOK_URL"):
        env.pop(key, None)  # a bench run never uses the caller's accounts or store
    env.update(
        {
            "HOST": HOST,
            "PORT": str(port),
            "JIMENG_BASE_URL": sim_url,
            "JIMENG_IMAGEX_URL": sim_url,  # the simulator serves ImageX too
            "IMAGE_FETCH_ALLOWED_HOSTS": HOST,
            "DATA_DIR": str(data_dir),
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


class Stack:
    """A simulator and a server on a private DATA_DIR, started and stopped together.

    ``restart_server()`` stops the server with SIGTERM and starts it again on
    the same port and DATA_DIR (the restart scenario).
    """

    def __init__(
        self,
        sim_args: list[str],
        env_extra: dict[str, str],
        *,
        root: Path = ROOT,
        keep_logs: bool = False,
    ) -> None:
        self.sim_args, self.env_extra, self.root = sim_args, dict(env_extra), root
        self.workdir = Path(tempfile.mkdtemp(prefix="jimeng-bench-"))
        self.data_dir = self.workdir / "data"
        self.keep_logs = keep_logs
        self.sim: Simulator | None = None
        self.server: Server | None = None
        self.config: dict[str, Any] = {}
        self.env: dict[str, str] = {}
        self.restarts: list[dict[str, Any]] = []

    def __enter__(self) -> Stack:
        try:
            log(f"starting the simulator ({' '.join(self.sim_args)})")
            self.sim = Simulator(self.sim_args, self.workdir / "simulator.log")
            self.env = server_env(
                self.sim.base_url, free_port(), self.data_dir, self.env_extra
            )
            self.config = probe_server_config(self.env, self.root)
            self._start_server()
        except BaseException:
            self.keep_logs = True
            self.__exit__(None, None, None)
            raise
        return self

    def _start_server(self) -> None:
        c = self.config
        log(
            f"starting gunicorn on :{self.env['PORT']} with {c['GUNICORN_WORKERS']} "
            f"workers (DATA_DIR {self.data_dir})"
        )
        self.server = Server(
            self.env, self.workdir / "gunicorn.log", c["GUNICORN_WORKERS"], self.root
        )

    def restart_server(self, grace: float = 60) -> dict[str, Any]:
        assert self.server is not None
        old = self.server
        stop_s = old.terminate(grace)
        code = old.proc.returncode
        t0 = time.monotonic()
        self._start_server()
        info = {
            "stop_s": stop_s,
            "exit_code": code,
            "start_s": time.monotonic() - t0,
            "old_master": old.proc.pid,
            "new_master": self.server.proc.pid,
        }
        self.restarts.append(info)
        return info

    def describe(self) -> dict[str, Any]:
        secret = set(SECRET_KEYS)
        return {
            "command": "gunicorn -c gunicorn.conf.py",
            "root": str(self.root),
            "workers_running": len(self.server.tree.workers) if self.server else 0,
            "config": {k: v for k, v in self.config.items() if k not in secret},
            "extra_env": {
                k: ("<set>" if k in secret else v) for k, v in self.env_extra.items()
            },
        }

    def __exit__(self, *exc: Any) -> None:
        if self.server is not None:
            self.server_log_tail = self.server.log_tail(20).splitlines()
            self.server.stop()
        if self.sim is not None:
            self.sim.stop()
        if self.keep_logs:
            log(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
