"""Run the real service (gunicorn + gevent) on a free loopback port for e2e tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Poll *url* until it answers; fail early if *proc* exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


@dataclass
class Server:
    """A running server process and where its output goes."""

    base_url: str
    proc: subprocess.Popen
    log_path: Path

    def output(self) -> str:
        """Return everything the process has printed so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def gunicorn_server(
    env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[Server]:
    """Start ``gunicorn -c gunicorn.conf.py`` on a free port and yield it."""
    port = free_port()
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GUNICORN_WORKERS": "1",
        "JIMENG_ENV": "production",
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *args]
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    server = Server(f"http://127.0.0.1:{port}", proc, Path(log.name))
    try:
        wait_until_up(server.base_url + "/ping", proc)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.log_path.unlink(missing_ok=True)


class Simulator:
    """A simulator subprocess (the real gevent CLI) and its introspection API."""

    def __init__(self, args: tuple[str, ...] = ()) -> None:
        from simulator import start_simulator_process

        self.proc, self.base_url = start_simulator_process(args)

    def stop(self) -> None:
        from simulator import stop_simulator_process

        stop_simulator_process(self.proc)

    def stats(self) -> dict:
        return requests.get(self.base_url + "/__sim/stats?tasks=0", timeout=10).json()

    def configure(self, **changes) -> dict:
        url = self.base_url + "/__sim/config"
        return requests.post(url, json=changes, timeout=10).json()

    def set_credits(self, session: str, credits: int) -> None:
        body = {"session": session, "credits": credits}
        requests.post(self.base_url + "/__sim/credits", json=body, timeout=10)

    def reset(self) -> None:
        body = {"restore_settings": True}
        requests.post(self.base_url + "/__sim/reset", json=body, timeout=10)


def api_env(sim: Simulator, **extra: str) -> dict[str, str]:
    """Environment for a server that talks to *sim* and polls quickly."""
    return {
        "JIMENG_BASE_URL": sim.base_url,
        "POLL_FIRST_DELAY": "0.2",
        "POLL_EXPECTED_SECONDS": "1",
        "POLL_FINISHING_INTERVAL": "0.2",
        "POLL_MIN_INTERVAL": "0.1",
        "SSE_KEEPALIVE_INTERVAL": "0.5",
        "UPSTREAM_RETRY_BACKOFF": "0.05",
        "LOG_LEVEL": "INFO",
        **extra,
    }
