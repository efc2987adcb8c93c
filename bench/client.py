"""A minimal HTTP/1.1 client on gevent sockets: one connection per request
(``Connection: close``), content-length, chunked and close-delimited bodies.

It is cheap enough not to be the bottleneck (the reports show its CPU), and it
times what a user meets: connect, first byte, every arrival of body bytes (for
the SSE first-event and keep-alive figures) and the last byte.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import gevent

from . import HOST, BenchError


class HTTPFailure(Exception):
    """A request that produced no complete HTTP response."""


def build_request(
    method: str,
    path: str,
    port: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "User-Agent: jimeng-bench/2",
        "Accept: */*",
        "Connection: close",
        f"Content-Length: {len(payload)}",
    ]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def dechunk(raw: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body so far; return (data, complete)."""
    out, pos = [], 0
    while True:
        nl = raw.find(b"\r\n", pos)
        if nl < 0:
            return b"".join(out), False
        try:
            size = int(raw[pos:nl].split(b";")[0], 16)
        except ValueError as exc:
            raise HTTPFailure("bad chunked encoding") from exc
        if size == 0:
            return b"".join(out), True
        start, end = nl + 2, nl + 2 + size
        if len(raw) < end + 2:
            return b"".join(out), False
        out.append(raw[start:end])
        pos = end + 2


def http_call(
    port: int,
    request: bytes,
    timeout: float,
    watch: bytes | None = None,
    arrivals: bool = False,
) -> dict[str, Any]:
    """Send one request on a new connection; time it; never raise.

    Result keys: status, headers, body, error, phase, t_start/t_end (monotonic),
    wall_start/wall_end (Unix), t_connect, t_first_byte, t_watch (when *watch*
    first appeared in the body) and, with *arrivals*, ``arrivals``: a list of
    ``(monotonic time, decoded body length)`` after every read.
    """
    res: dict[str, Any] = {
        "t_start": time.monotonic(),
        "wall_start": time.time(),
        "status": None,
        "headers": {},
        "body": b"",
        "error": None,
        "phase": "connect",
        "t_watch": None,
        "t_first_byte": None,
    }
    if arrivals:
        res["arrivals"] = []
    sock = None
    timer = gevent.Timeout(timeout)
    timer.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.connect((HOST, port))
        res["t_connect"] = time.monotonic()
        res["phase"] = "send"
        sock.sendall(request)
        res["phase"] = "headers"
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise HTTPFailure("closed before the response headers")
            if res["t_first_byte"] is None:
                res["t_first_byte"] = time.monotonic()
            buf += data
        head, _, raw = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            res["status"] = int(lines[0].split()[1])
        except (IndexError, ValueError) as exc:
            raise HTTPFailure(f"bad status line {lines[0][:60]!r}") from exc
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        res["headers"] = headers
        res["phase"] = "body"
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        length = int(length) if length and not chunked else None
        while True:
            if chunked:
                body, complete = dechunk(raw)
            else:
                body = raw
                complete = length is not None and len(raw) >= length
            if arrivals:
                res["arrivals"].append((time.monotonic(), len(body)))
            if watch is not None and res["t_watch"] is None and watch in body:
                res["t_watch"] = time.monotonic()
            if complete:
                break
            data = sock.recv(65536)
            if not data:
                if length is None and not chunked:
                    break  # close-delimited body
                raise HTTPFailure("closed before the response body was complete")
            raw += data
        res["body"] = body if length is None else body[:length]
        res["phase"] = "done"
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        res["error"] = f"timeout in {res['phase']} (>{timeout:.0f} s)"
    except HTTPFailure as exc:
        res["error"] = f"{exc} ({res['phase']})"
    except ConnectionResetError:
        res["error"] = f"connection reset ({res['phase']})"
    except ConnectionRefusedError:
        res["error"] = f"connection refused ({res['phase']})"
    except BrokenPipeError:
        res["error"] = f"broken pipe ({res['phase']})"
    except OSError as exc:
        res["error"] = f"{type(exc).__name__} errno {exc.errno} ({res['phase']})"
    finally:
        timer.close()
        if sock is not None:
            sock.close()
        res["t_end"] = time.monotonic()
        res["wall_end"] = time.time()
    return res


def http_json(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> Any:
    """One JSON call that must succeed (the simulator's introspection)."""
    res = http_call(port, build_request(method, path, port, body, headers), timeout)
    if res["error"] or res["status"] != 200:
        raise BenchError(
            f"{method} {path} on :{port} failed: "
            f"{res['error'] or res['status']} {res['body'][:200]!r}"
        )
    return json.loads(res["body"])


def try_json(res: dict[str, Any]) -> Any:
    """The JSON body of a result, or None."""
    try:
        return json.loads(res["body"]) if res["body"] else None
    except ValueError:
        return None
