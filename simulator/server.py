"""Ways to run the simulator: gevent (CLI), a thread (in-process), a subprocess."""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .app import SimulatorApp, create_simulator
from .settings import SimSettings

BACKLOG = 4096
READY_PREFIX = "JIMENG_SIM_LISTENING "
PROJECT_ROOT = Path(__file__).resolve().parents[1]


# -- gevent (used by ``python -m simulator``) ---------------------------
def serve_gevent(
    app: SimulatorApp, host: str, port: int, access_log: bool = False
) -> None:
    """Serve *app* with gevent's pywsgi until interrupted (call after patch_all)."""
    from gevent.pywsgi import WSGIHandler, WSGIServer

    class Handler(WSGIHandler):
        def get_environ(self) -> dict[str, Any]:
            env = super().get_environ()
            env["sim.socket"] = self.socket  # used by the "reset" fault
            return env

    server = WSGIServer(
        (host, port),
        app,
        backlog=BACKLOG,
        handler_class=Handler,
        log=sys.stderr if access_log else None,
        error_log=sys.stderr,
    )
    server.init_socket()
    # Accepted sockets inherit TCP_NODELAY: pywsgi writes headers and body in two
    # sends, and with Nagle on, the client's delayed ACK adds 40 ms to every call.
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bound_host, bound_port = server.address[:2]
    print(f"{READY_PREFIX}http://{bound_host}:{bound_port}", flush=True)
    server.serve_forever()


# -- thread (werkzeug, no monkey-patching needed) ----------------------------------
class _QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        self.close_connection = True  # the "reset" fault: never read on


class _Server(ThreadedWSGIServer):
    request_queue_size = BACKLOG
    daemon_threads = True

    def shutdown_request(self, request: Any) -> None:
        # After the "reset" fault (SO_LINGER 0) close at once, so the peer gets
        # an RST instead of the FIN that socketserver's shutdown() would send.
        linger = request.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        if struct.unpack("ii", linger) == (1, 0):
            self.close_request(request)
        else:
            super().shutdown_request(request)


class RunningSimulator:
    """A simulator served from a background thread on 127.0.0.1:<free port>."""

    def __init__(self, app: SimulatorApp, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.server = _Server(host, port, app, handler=_QuietHandler)
        self.base_url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="jimeng-sim",
            daemon=True,
        )
        self.thread.start()

    @property
    def state(self) -> Any:
        return self.app.state

    @property
    def settings(self) -> SimSettings:
        return self.app.settings

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_simulator_in_thread(
    settings: SimSettings | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningSimulator:
    """Start a threaded werkzeug server for a new simulator; ``.stop()`` ends it."""
    return RunningSimulator(create_simulator(settings), host, port)


# -- subprocess (the real gevent CLI) ----------------------------------------------
def start_simulator_process(
    args: Sequence[str] = (),
    host: str = "127.0.0.1",
    timeout: float = 20.0,
    env: dict[str, str] | None = None,
    stderr: Any = None,
) -> tuple[subprocess.Popen[str], str]:
    """Run ``python -m simulator`` on a free port; return (proc, base_url).

    Waits until the server has bound its socket. Stop it with
    :func:`stop_simulator_process` (or ``proc.terminate()``).
    """
    full_env = dict(os.environ if env is None else env)
    path = full_env.get("PYTHONPATH", "")
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), path) if p)
    cmd = [
        sys.executable,
        "-m",
        "simulator",
        "--host",
        host,
        "--port",
        "0",
        *args,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=full_env,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        return proc, _read_ready_line(proc, timeout)
    except BaseException:
        stop_simulator_process(proc)
        raise


def _read_ready_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(READY_PREFIX):
                return line[len(READY_PREFIX) :].strip()
            if not line and proc.poll() is not None:
                break
    raise RuntimeError(f"simulator did not start (exit code {proc.poll()})")


def stop_simulator_process(proc: subprocess.Popen[str], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
