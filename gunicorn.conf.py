"""Gunicorn settings, taken from the same env vars as config.py.

Stdlib imports only (config.py is stdlib-only too): this file runs in the master,
and gevent patches only the forked workers, so importing requests/ssl here would
leave them unpatched. For the same reason preload_app stays False.
"""

import glob
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from config import Config  # noqa: E402

wsgi_app = "app:app"
bind = f"{Config.HOST}:{Config.PORT}"
if ":" in Config.HOST and not Config.HOST.startswith("["):
    bind = f"[{Config.HOST}]:{Config.PORT}"  # IPv6 literal

# Workers: gevent, because a request waits minutes on jimeng while holding a socket.
worker_class = "gevent"
workers = Config.GUNICORN_WORKERS
worker_connections = Config.GUNICORN_WORKER_CONNECTIONS
backlog = Config.GUNICORN_BACKLOG
# Each worker binds its own SO_REUSEPORT socket and the kernel spreads new
# connections evenly; with one shared socket a busy worker took most of a burst.
reuse_port = True
preload_app = False
control_socket_disable = True  # one service per host user; no ~/.gunicorn socket
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # heartbeat files off disk (overlayfs in Docker)

# For async workers `timeout` is a heartbeat, not a per-request limit. On SIGTERM
# in-flight generations get until the generation deadline (plus a margin) to end.
timeout = 60
graceful_timeout = Config.GUNICORN_GRACEFUL_TIMEOUT
keepalive = 75  # above nginx's default upstream keepalive_timeout (60 s)

# Logging: to stdout/stderr for the supervisor (systemd/docker/supervisord).
accesslog = "-"
errorlog = "-"
loglevel = Config.LOG_LEVEL.lower()
access_log_format = (
    '%(t)s %(h)s fwd=%({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms '
    "rid=%({x-request-id}o)s"
)
forwarded_allow_ips = Config.FORWARDED_ALLOW_IPS

# Metrics: prometheus-client's multiprocess mode, so /metrics (served by any
# worker) sums every worker. The directory must exist before the workers start.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="jimeng-metrics-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server):
    """Start from empty metrics (files of an earlier run would be added in)."""
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """Drop the live gauges of a dead worker (prometheus_client.mark_process_dead)."""
    pattern = f"gauge_live*_{worker.pid}.db"
    for path in glob.glob(
        os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], pattern)
    ):
        os.remove(path)


def when_ready(server):
    """Say where we listen (with reuse_port the workers bind, not the master)."""
    server.log.info("Serving on http://%s (%d gevent workers)", bind, workers)
