"""Gunicorn settings, taken from the same env vars as config.py.

Stdlib, gunicorn and ``serving`` imports only (config.py is stdlib-only too): this
file runs in the master, and gevent patches only the forked workers, so importing
requests/ssl (or ``jimeng_api``) here would leave them unpatched. For the same
reason preload_app stays False.

The master checks the configuration before it forks (one line, exit status 78 =
EX_CONFIG, which supervisors can be told not to restart), refuses to start when
the port is already served, and removes the metrics directory it made on exit.
"""

import atexit
import errno
import glob
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

EX_CONFIG = 78  # sysexits.h: "configuration error"; systemd: RestartPreventExitStatus


def _load_config():
    """Return the settings class, or exit with one clear line per problem."""
    try:
        import config

        settings_class = config.get_config()
        config.validate({k: getattr(settings_class, k) for k in dir(settings_class)})
    except ValueError as exc:  # config.ConfigError
        if type(exc).__name__ != "ConfigError":
            raise
        print(f"jimeng-api: configuration error: {exc}", file=sys.stderr, flush=True)
        sys.exit(EX_CONFIG)
    return settings_class


Config = _load_config()

from serving import redact  # noqa: E402
from serving.glog import SafeLogger  # noqa: E402
from serving.worker import GuardedGeventWorker  # noqa: E402

wsgi_app = "app:app"
bind = f"{Config.HOST}:{Config.PORT}"
if ":" in Config.HOST and not Config.HOST.startswith("["):
    bind = f"[{Config.HOST}]:{Config.PORT}"  # IPv6 literal

# Workers: gevent, because a request waits minutes on jimeng while holding a socket.
# The subclass adds the body guard, the per-address cap and JSON errors.
GuardedGeventWorker.max_connections_per_ip = Config.MAX_CONNECTIONS_PER_IP
GuardedGeventWorker.body_timeout = Config.CLIENT_BODY_TIMEOUT
GuardedGeventWorker.max_body_bytes = Config.MAX_CONTENT_LENGTH
worker_class = GuardedGeventWorker
workers = Config.GUNICORN_WORKERS
worker_connections = Config.GUNICORN_WORKER_CONNECTIONS
backlog = Config.GUNICORN_BACKLOG
# Each worker binds its own SO_REUSEPORT socket and the kernel spreads new
# connections evenly; with one shared socket a busy worker took most of a burst.
# on_starting refuses to start when another server has the port already.
reuse_port = True
preload_app = False
control_socket_disable = True  # one service per host user; no ~/.gunicorn socket
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # heartbeat files off disk (overlayfs in Docker)

# For async workers `timeout` is a heartbeat, not a per-request limit. On SIGTERM
# in-flight generations get until the generation deadline (plus a margin) to end.
timeout = 60
graceful_timeout = Config.GUNICORN_GRACEFUL_TIMEOUT
# The gevent worker bounds "wait for the next request + read its head" by
# keepalive: this is the total deadline for the request head (slow clients) and
# the idle keep-alive time. nginx's upstream keepalive_timeout must stay below it.
keepalive = Config.CLIENT_HEADER_TIMEOUT
# Parser limits (gunicorn answers 414/431/400 as JSON, see serving.worker)
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Logging: to stdout/stderr for the supervisor (systemd/docker/supervisord).
# SafeLogger masks secrets and escapes control characters in every line.
logger_class = SafeLogger
accesslog = "-"
errorlog = "-"
loglevel = Config.LOG_LEVEL.lower()
access_log_format = (
    '%(t)s %(h)s fwd=%({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms '
    "rid=%({x-request-id}o)s"
)
forwarded_allow_ips = Config.FORWARDED_ALLOW_IPS

_OWNED_METRICS_DIR = "JIMENG_OWNED_METRICS_DIR"  # env: the dir this master made


def _bind_addresses(server):
    """Yield (family, host, port) for every TCP address gunicorn will bind."""
    for address in server.cfg.address:
        if isinstance(address, tuple) and len(address) >= 2:
            family = socket.AF_INET6 if ":" in str(address[0]) else socket.AF_INET
            yield family, address[0], int(address[1])


def _port_in_use(family, host, port):
    """Whether something listens on host:port (a bind without SO_REUSEPORT fails)."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def refuse_busy_port(server):
    """Exit when another server already has our port: with reuse_port the kernel
    would otherwise split the traffic between the two."""
    if os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS"):
        return  # re-exec (USR2) or systemd socket activation: the port is ours
    for family, host, port in _bind_addresses(server):
        if _port_in_use(family, host, port):
            print(
                f"jimeng-api: {host}:{port} is already in use by another server; "
                "stop it or choose another PORT.",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(1)


def _metrics_dir():
    """Create the multiprocess metrics dir (the workers inherit the env var)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        path = tempfile.mkdtemp(prefix="jimeng-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        os.environ[_OWNED_METRICS_DIR] = path
        master = os.getpid()
        atexit.register(lambda: os.getpid() == master and _remove_metrics_dir())
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    return os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _remove_metrics_dir():
    path = os.environ.get(_OWNED_METRICS_DIR)
    if path and path == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(path, ignore_errors=True)


def on_starting(server):
    """Refuse a busy port, register the secrets to mask, start from empty metrics.

    Metrics use prometheus-client's multiprocess mode, so /metrics (served by any
    worker) sums every worker; the directory must exist before the workers start.
    """
    refuse_busy_port(server)
    redact.register_secrets(
        [*Config.API_KEYS, *Config.JIMENG_SESSION_IDS, Config.METRICS_TOKEN]
        + [Config.WEBHOOK_SECRET]
    )
    for path in glob.glob(os.path.join(_metrics_dir(), "*.db")):
        os.remove(path)


def on_exit(server):
    """Remove the metrics directory if this master created it."""
    _remove_metrics_dir()


def child_exit(server, worker):
    """Drop the live gauges of a dead worker (prometheus_client.mark_process_dead)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    for path in glob.glob(os.path.join(directory, f"gauge_live*_{worker.pid}.db")):
        os.remove(path)


def when_ready(server):
    """Say where we listen (with reuse_port the workers bind, not the master)."""
    server.log.info("Serving on http://%s (%d gevent workers)", bind, workers)
