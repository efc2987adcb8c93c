"""gunicorn's gevent worker, hardened against slow and hostile clients.

- **Total deadline for the request head.** gunicorn's gevent worker bounds the
  wait for the next request (idle keep-alive *and* the header lines) by
  ``keepalive``; gunicorn.conf.py sets that to ``CLIENT_HEADER_TIMEOUT``, so a
  client dripping header lines is dropped after that many seconds in total.
- **Request body deadline and size** (also chunked): the ``BodyGuard`` in front of
  the app (``CLIENT_BODY_TIMEOUT``, ``MAX_CONTENT_LENGTH``).
- **Connections per client address**, per worker (``MAX_CONNECTIONS_PER_IP``);
  the proxies of ``forwarded_allow_ips`` (nginx) are exempt.
- **JSON errors**: gunicorn's own answers to a bad request line, a long URL or huge
  headers (400/414/431/501) are OpenAI-shaped JSON instead of HTML.
- the secret filter on every log handler, once the app is loaded.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from datetime import datetime
from typing import Any

import gevent
from gunicorn.http import errors as http_errors
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.ggevent import GeventWorker

from . import redact
from .guard import BodyGuard, json_error

#: gunicorn's parse errors that are the client's fault, with our status
CLIENT_ERRORS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (http_errors.LimitRequestLine, 414, "URI Too Long", "uri_too_long"),
    (
        http_errors.LimitRequestHeaders,
        431,
        "Request Header Fields Too Large",
        "headers_too_large",
    ),
    (
        http_errors.UnsupportedTransferCoding,
        501,
        "Not Implemented",
        "unsupported_transfer_coding",
    ),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "expectation_failed"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", "forbidden"),
    (http_errors.ConfigurationProblem, 500, "Internal Server Error", "server_error"),
    (http_errors.InvalidResponseHeader, 500, "Internal Server Error", "server_error"),
    (
        http_errors.InvalidResponseHeaderName,
        500,
        "Internal Server Error",
        "server_error",
    ),
    (http_errors.ParseException, 400, "Bad Request", "bad_request"),
)


def classify(exc: BaseException) -> tuple[int, str, str] | None:
    """Return (status, reason, code) for a client error, None for a server bug."""
    for error_class, status, reason, code in CLIENT_ERRORS:
        if isinstance(exc, error_class):
            return status, reason, code
    return None


def error_bytes(status: int, reason: str, message: str, code: str) -> bytes:
    """Return a complete HTTP/1.1 error response with a JSON body."""
    body = json_error(status, message, code)
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def trusted_networks(values: Any) -> list[Any] | None:
    """Parse ``forwarded_allow_ips``; None means every address is trusted."""
    items = values if isinstance(values, (list, tuple)) else str(values).split(",")
    networks = []
    for item in (str(i).strip() for i in items):
        if item == "*":
            return None
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            continue  # a unix socket name or a typo: never matches
    return networks


class GuardedGeventWorker(GeventWorker):
    """See the module docstring; gunicorn.conf.py sets the class attributes."""

    max_connections_per_ip = 0  # 0: no limit
    body_timeout = 20.0
    max_body_bytes = 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_by_ip: Counter[str] = Counter()
        self.trusted = trusted_networks(self.cfg.forwarded_allow_ips)

    # --- app loading ---

    def load_wsgi(self) -> None:
        """Load the app behind the body guard, then filter every log handler."""
        super().load_wsgi()
        self.wsgi = BodyGuard(
            self.wsgi, max_bytes=self.max_body_bytes, timeout=self.body_timeout
        )
        redact.install(["gunicorn.error", "gunicorn.access"])

    # --- connections per address ---

    def is_trusted(self, ip: str) -> bool:
        """Whether *ip* is a proxy of forwarded_allow_ips (exempt from the cap)."""
        if self.trusted is None:
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return True  # unix socket
        return any(address in network for network in self.trusted)

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        ip = addr[0] if isinstance(addr, tuple) and addr else ""
        limit = self.max_connections_per_ip
        if limit and not self.is_trusted(ip) and self.open_by_ip[ip] >= limit:
            self.refuse(client, ip)
            return
        self.open_by_ip[ip] += 1
        try:
            super().handle(listener, client, addr)
        finally:
            self.open_by_ip[ip] -= 1
            if self.open_by_ip[ip] <= 0:
                del self.open_by_ip[ip]

    def refuse(self, client: socket.socket, ip: str) -> None:
        """Answer 429 on a connection over the per-address cap, and close it."""
        message = "Too many connections from your address; close some and retry."
        payload = error_bytes(429, "Too Many Requests", message, "too_many_connections")
        self.log.warning(
            "Connection refused: ip=%s has %d open", ip, self.open_by_ip[ip]
        )
        try:
            with gevent.Timeout(1, False):
                client.sendall(payload)
        except OSError:
            pass
        finally:
            client.close()

    # --- errors before the app runs ---

    def handle_error(
        self, req: Any, client: Any, addr: Any, exc: BaseException
    ) -> None:
        """gunicorn's handle_error, answering JSON instead of HTML."""
        started = datetime.now()
        addr = addr or ("", -1)
        known = classify(exc)
        if known:
            status, reason, code = known
            message = redact.redact(str(exc))[:300]
            self.log.warning("Invalid request from ip=%s: %s", addr[0], message)
            header_error = (http_errors.InvalidHeader, http_errors.InvalidHeaderName)
            if not req and isinstance(exc, header_error):
                req = getattr(exc, "req", None)  # for the access log, as gunicorn
        else:
            status, reason, code = 500, "Internal Server Error", "server_error"
            message = "The server had an error while processing your request."
            self.log.exception("Error handling request")
        if req is not None and hasattr(req, "body"):
            self.access_log_error(req, client, addr, status, reason, started)
        try:
            with gevent.Timeout(2, False):
                client.sendall(error_bytes(status, reason, message, code))
        except Exception:
            self.log.debug("Failed to send error message.")

    def access_log_error(
        self, req: Any, client: Any, addr: Any, status: int, reason: str, started: Any
    ) -> None:
        """Write the access-log line of a request refused by the parser."""
        environ = default_environ(req, client, self.cfg)
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
        response = Response(req, client, self.cfg)
        response.status = f"{status} {reason}"
        response.response_length = 0
        self.log.access(response, req, environ, datetime.now() - started)
