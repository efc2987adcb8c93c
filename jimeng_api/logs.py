"""Request ids, one log line per request, and the secret-safe name of a token."""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from . import metrics

log = logging.getLogger("jimeng_api.access")

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


def token_id(token: str) -> str:
    """Return a short, stable, irreversible name for a secret (for logs)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:8]


def mask(token: str) -> str:
    """Return the form of a session id that responses may show."""
    return f"…{token_id(token)}"


def _incoming_request_id() -> str:
    rid = request.headers.get(REQUEST_ID_HEADER, "")
    return rid if _SAFE_REQUEST_ID.match(rid) else uuid.uuid4().hex


def init_request_logging(app: Flask) -> None:
    """Give every request an id, echo it, and log one line when it has finished."""

    @app.before_request
    def start_request() -> None:
        g.request_id = _incoming_request_id()
        g.started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        rid = getattr(g, "request_id", None) or _incoming_request_id()
        response.headers[REQUEST_ID_HEADER] = rid
        started = getattr(g, "started", time.perf_counter())
        method, path, status = request.method, request.path, response.status_code
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.request_served(route, method, status)

        def log_line() -> None:  # after the body, so streams log their full time
            ms = (time.perf_counter() - started) * 1000
            log.info("%s %s %s %.0fms rid=%s", method, path, status, ms, rid)

        response.call_on_close(log_line)
        return response
