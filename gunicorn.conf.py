"""Gunicorn settings, taken from the same env vars as config.py.

Stdlib imports only (config.py is stdlib-only too): this file runs in the master,
and gevent patches only the forked workers, so importing requests/ssl here would
leave them unpatched. For the same reason preload_app stays False.
"""

import os
import sys

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
preload_app = False

# For async workers `timeout` is a heartbeat, not a per-request limit. On SIGTERM
# in-flight generations get until the generation deadline (plus a margin) to end.
timeout = 60
graceful_timeout = Config.GUNICORN_GRACEFUL_TIMEOUT
keepalive = 75  # above nginx's default upstream keepalive_timeout (60 s)

# Logging: to stdout/stderr for the supervisor (systemd/docker/supervisord).
accesslog = "-"
errorlog = "-"
loglevel = Config.LOG_LEVEL.lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
