"""A WSGI guard in front of the app: the request body, read whole, bounded and timed.

gunicorn hands the app a lazy body stream: a client can drip it for minutes, a
chunked body has no length for the app's 413 check, and a malformed chunk raises
inside Flask (a 500). The guard reads the body before the app runs:

- within ``timeout`` seconds in total (else 408 and the connection is closed);
- at most ``max_bytes`` (else 413, also for chunked bodies, without reading the rest);
- a malformed chunk or a cut-off body is a 400;

and gives the app an in-memory stream with an exact ``CONTENT_LENGTH``. Every
answer is an OpenAI-shaped JSON error.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

import gevent
from gunicorn.http.errors import NoMoreData, ParseException

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
CHUNK = 65536
LINGER_BYTES = 4 * 1024 * 1024  # dropped after an oversized body, at most
LINGER_SECONDS = 1.0


def json_error(status: int, message: str, code: str, kind: str | None = None) -> bytes:
    """Return the OpenAI error body for *status*."""
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    error = {"message": message, "type": kind, "param": None, "code": code}
    return json.dumps({"error": error}).encode()


REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
}


class BodyGuard:
    """Wrap *app*; see the module docstring."""

    def __init__(self, app: WSGIApp, *, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        length = environ.get("CONTENT_LENGTH", "").strip()
        if not chunked and length in ("", "0"):
            return self.app(environ, start_response)
        if not chunked and not length.isdigit():
            return self._refuse(start_response, 400, "Content-Length is not a number.")
        if not chunked and int(length) > self.max_bytes:
            if int(length) - self.max_bytes <= LINGER_BYTES:
                self._drain(environ["wsgi.input"])
            return self._too_large(start_response)
        try:
            body = self._read(environ["wsgi.input"])
        except gevent.Timeout:
            message = f"The request body did not arrive within {self.timeout:g} s."
            return self._refuse(start_response, 408, message, "request_timeout")
        except (ParseException, NoMoreData, ValueError):
            message = "The request body is malformed (bad chunk or cut short)."
            return self._refuse(start_response, 400, message, "invalid_body")
        if len(body) > self.max_bytes:
            self._drain(environ["wsgi.input"])
            return self._too_large(start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

    def _read(self, stream: Any) -> bytes:
        """Read up to ``max_bytes + 1`` bytes within the deadline."""
        chunks, size = [], 0
        with gevent.Timeout(self.timeout):
            while size <= self.max_bytes:
                chunk = stream.read(min(CHUNK, self.max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        return b"".join(chunks)

    @staticmethod
    def _drain(stream: Any) -> None:
        """Read and drop a little more of an oversized body, so that closing the
        connection does not reset it before the client has read our 413."""
        left = LINGER_BYTES
        try:
            with gevent.Timeout(LINGER_SECONDS, False):
                while left > 0 and (chunk := stream.read(min(CHUNK, left))):
                    left -= len(chunk)
        except (ParseException, NoMoreData, ValueError, OSError):
            pass

    def _too_large(self, start_response: Callable) -> Iterable[bytes]:
        message = f"The request body is larger than {self.max_bytes} bytes."
        return self._refuse(start_response, 413, message, "request_too_large")

    @staticmethod
    def _refuse(
        start_response: Callable, status: int, message: str, code: str = "bad_request"
    ) -> Iterable[bytes]:
        """Answer *status* and close the connection (the body may be unread)."""
        response = getattr(start_response, "__self__", None)  # gunicorn's Response
        if hasattr(response, "force_close"):
            response.force_close()
        body = json_error(status, message, code)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            ("x-should-retry", "false"),
        ]
        start_response(f"{status} {REASONS[status]}", headers)
        return [body]
