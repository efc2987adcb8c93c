"""A throwaway ``redis-server`` on a free loopback port, for tests.

``start_redis()`` returns ``(proc, url)`` once the server answers PING;
``stop_redis(proc)`` ends it; ``redis_server()`` is both as a context manager.
Nothing is saved to disk (``--save "" --appendonly no``), and the server's
working directory is a temporary one, removed on stop.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

EXECUTABLE = "redis-server"
START_TIMEOUT = 10.0
ATTEMPTS = 3  # a free port can be taken between choosing and binding it


class RedisUnavailable(RuntimeError):
    """``redis-server`` is not installed or would not start."""


def redis_installed() -> bool:
    """Return whether ``redis-server`` is on PATH."""
    return shutil.which(EXECUTABLE) is not None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis() -> tuple[subprocess.Popen, str]:
    """Start ``redis-server`` on a free port; return the process and its URL."""
    executable = shutil.which(EXECUTABLE)
    if executable is None:
        raise RedisUnavailable(
            f"{EXECUTABLE} is not installed (apt-get install redis-server)"
        )
    error = ""
    for _ in range(ATTEMPTS):
        workdir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        port = free_port()
        cmd = [
            executable, "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(workdir), "--logfile", str(workdir / "redis.log"),
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        proc.workdir = workdir  # type: ignore[attr-defined]
        url = f"redis://127.0.0.1:{port}/0"
        if _wait_for_ping(proc, url):
            return proc, url
        error = _log_tail(workdir)
        stop_redis(proc)
    raise RedisUnavailable(f"{EXECUTABLE} did not start: {error}")


def _wait_for_ping(proc: subprocess.Popen, url: str) -> bool:
    """Poll until the server answers PING; False if it exits or times out."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if client.ping():
                    return True
            except redis.RedisError:
                time.sleep(0.02)
        return False
    finally:
        client.close()


def _log_tail(workdir: Path) -> str:
    log = workdir / "redis.log"
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def stop_redis(proc: subprocess.Popen) -> None:
    """Stop the server started by ``start_redis`` and remove its directory."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    workdir = getattr(proc, "workdir", None)
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """Run a throwaway server for the ``with`` block; yield its URL."""
    proc, url = start_redis()
    try:
        yield url
    finally:
        stop_redis(proc)
