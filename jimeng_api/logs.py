"""Request ids, one log line per request (gunicorn's access log, or ours), the
secret-safe name of a token, and the secret filter on every log handler (see
``serving.redact``)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request

from serving import redact

from . import metrics

log = logging.getLogger("jimeng_api.access")

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
#: settings whose values are secrets, masked wherever they appear in a log line
SECRET_SETTINGS = (
    "API_KEYS",
    "JIMENG_SESSION_IDS",
    "METRICS_TOKEN",
    "WEBHOOK_SECRET",
    "STORE_SECRET",
)
MAX_LOGGED_PATH = 300


def token_id(token: str) -> str:
    """Return a short, stable, irreversible name for a secret (for logs)."""
    return redact.secret_id(token)


def mask(token: str) -> str:
    """Return the form of a session id that responses may show."""
    return f"…{token_id(token)}"


def printable(text: str, limit: int = MAX_LOGGED_PATH) -> str:
    """Return *text* safe for one log line: control characters escaped, bounded."""
    text = redact.escape_control(text)
    return text if len(text) <= limit else text[:limit] + "…"


def _incoming_request_id() -> str:
    rid = request.headers.get(REQUEST_ID_HEADER, "")
    return rid if _SAFE_REQUEST_ID.fullmatch(rid) else uuid.uuid4().hex


def _bearer_tokens(header: str | None) -> tuple[str, ...]:
    """The comma-separated credentials of an ``Authorization: Bearer`` header."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return ()
    return tuple(t.strip() for t in value.split(",") if t.strip())


def install_secret_filter(config: Mapping[str, Any]) -> None:
    """Mask the configured secrets, and anything that looks like a secret, in
    every record of every handler that exists now (app.py's and gunicorn's)."""
    secrets: list[str] = []
    for name in SECRET_SETTINGS:
        value = config.get(name)
        if isinstance(value, str):
            secrets.append(value)
        elif isinstance(value, (list, tuple, set, frozenset)):
            secrets.extend(v for v in value if isinstance(v, str))
    redact.register_secrets(secrets)
    redact.install(["gunicorn.error", "gunicorn.access"])


def init_request_logging(app: Flask) -> None:
    """Give every request an id, echo it, and log one line when it has finished:
    under gunicorn its access log writes that line (with the id, and also for
    requests refused before they reach the app), elsewhere (``flask run``,
    tests) the ``jimeng_api.access`` logger does.

    The bearer tokens of the request are masked in every line logged while it
    is served (``redact.request_secrets``)."""
    install_secret_filter(app.config)

    @app.before_request
    def start_request() -> None:
        g.request_id = _incoming_request_id()
        g.started = time.perf_counter()
        redact.request_secrets.set(_bearer_tokens(request.headers.get("Authorization")))

    @app.after_request
    def finish_request(response: Response) -> Response:
        rid = getattr(g, "request_id", None) or _incoming_request_id()
        response.headers[REQUEST_ID_HEADER] = rid
        started = getattr(g, "started", time.perf_counter())
        method, status = request.method, response.status_code
        path = printable(request.path)
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.request_served(route, method, status)

        def log_line() -> None:  # after the body, so streams log their full time
            ms = (time.perf_counter() - started) * 1000
            log.info(
                "%s %s %s %.0fms rid=%s", printable(method, 16), path, status, ms, rid
            )

        if not request.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn"):
            response.call_on_close(log_line)
        return response
