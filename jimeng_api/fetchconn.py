"""One request to a checked address: the connection (to exactly the address
that was resolved and checked, directly or through an account's proxy, with TLS
verified against the original name), the request and its answer, read within
its size cap and the total deadline."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .fetchlimits import Budget, Deadline, DeadlineExceeded
from .urlcheck import Target

CHUNK = 65536
POST_RESPONSE_CAP = 64 * 1024
USER_AGENT = "jimeng-api/1.0"


class FetchFailed(Exception):
    """Why a fetch failed: ``kind`` picks the API error, ``message`` is safe."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # refused | failed | timeout | too_large | not_image
        self.message = message


@dataclass(frozen=True)
class Resolved(Target):
    """A checked target and the address it resolved to (the one to connect to)."""

    address: str = ""


@dataclass(frozen=True)
class _Response:
    content: bytes
    content_type: str
    location: str


def exchange(
    method: str,
    target: Resolved,
    deadline: Deadline,
    tls: ssl.SSLContext,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    limit: int = POST_RESPONSE_CAP,
    accept: Sequence[str] = (),
    budget: Budget | None = None,
    proxy: str | None = None,
) -> tuple[int, _Response]:
    """Send one request to the checked address and read the answer."""
    conn = _connect(target, deadline, tls, proxy)
    response: http.client.HTTPResponse | None = None
    try:
        conn.request(method, target.path, body=body, headers=_headers(headers))
        response = conn.getresponse()
        result = _receive(method, response, target, deadline, limit, accept, budget)
        if deadline.expired:  # the watchdog cut the socket: EOF is not an end
            raise DeadlineExceeded()
        return response.status, result
    except (OSError, http.client.HTTPException) as exc:
        if deadline.expired:
            raise DeadlineExceeded() from None
        name = type(exc).__name__
        raise FetchFailed("failed", f"{target.origin} failed ({name})") from None
    finally:
        if response is not None:
            response.close()
        conn.close()


def _connect(
    target: Resolved,
    deadline: Deadline,
    tls: ssl.SSLContext,
    proxy: str | None = None,
) -> http.client.HTTPConnection:
    """Open a connection to ``target.address`` that speaks to ``target.host``
    (through *proxy*, to that same address, when one is given)."""
    try:
        if proxy:
            sock = _open_via_proxy(proxy, target, deadline.remaining())
        else:
            sock = _open_socket(target.address, target.port, deadline.remaining())
    except OSError as exc:
        if deadline.expired:
            raise DeadlineExceeded() from None
        reason = type(exc).__name__
        if proxy:  # never name the proxy: it may carry credentials
            raise FetchFailed(
                "failed", f"{target.origin}: the account's proxy failed ({reason})"
            ) from None
        raise FetchFailed(
            "failed", f"{target.origin} is unreachable ({reason})"
        ) from None
    deadline.watch(sock)
    conn = http.client.HTTPConnection(target.host, target.port)
    try:
        if target.scheme == "https":
            sock = tls.wrap_socket(sock, server_hostname=target.host)
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        raise FetchFailed(
            "failed", f"{target.origin}: TLS failed ({type(exc).__name__})"
        ) from None
    sock.settimeout(deadline.remaining())
    conn.sock = sock
    return conn


def _receive(
    method: str,
    response: http.client.HTTPResponse,
    target: Target,
    deadline: Deadline,
    limit: int,
    accept: Sequence[str],
    budget: Budget | None,
) -> _Response:
    """Read an answer: a redirect or error status (its body dropped), or the
    body of a 200 checked against *accept* and read within *limit*."""
    if method == "POST" or response.status != 200:
        response.read(POST_RESPONSE_CAP)
        return _Response(b"", "", response.getheader("Location") or "")
    content_type = _media_type(response.getheader("Content-Type", ""))
    if accept and not any(content_type.startswith(a) for a in accept):
        message = f"{target.origin} sent Content-Type '{content_type}'"
        raise FetchFailed("not_image", message)
    content = _read_capped(response, limit, budget, target, deadline)
    return _Response(content, content_type, "")


def _headers(extra: Mapping[str, str] | None) -> dict[str, str]:
    return {
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Accept-Encoding": "identity",  # no decompression bombs
        "Connection": "close",
        **(extra or {}),
    }


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _read_capped(
    response: http.client.HTTPResponse,
    limit: int,
    budget: Budget | None,
    target: Target,
    deadline: Deadline,
) -> bytes:
    """Read the body, refusing it as soon as it passes *limit* (or the budget)."""
    declared = response.getheader("Content-Length")
    too_large = FetchFailed(
        "too_large", f"{target.origin} sent more than {limit} bytes"
    )
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    while chunk := response.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large
        if budget is not None:
            budget.take(len(chunk))
        chunks.append(chunk)
        deadline.remaining()
    return b"".join(chunks)


def _open_socket(address: str, port: int, timeout: float) -> socket.socket:
    """Connect to the address literal itself: no second name resolution."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _open_via_proxy(proxy: str, target: Target, timeout: float) -> socket.socket:
    """Connect to the checked address (not the name: DNS cannot steer the
    proxy elsewhere) through an account's proxy: SOCKS4/5 via PySocks (the
    ``requests[socks]`` extra), HTTP(S) via CONNECT."""
    parts = urlsplit(proxy)
    scheme = parts.scheme.lower()
    user = unquote(parts.username or "") or None
    password = unquote(parts.password or "") or None
    address = getattr(target, "address", "") or target.host
    if scheme.startswith("socks"):
        import socks  # PySocks

        kind = socks.SOCKS4 if scheme.startswith("socks4") else socks.SOCKS5
        try:
            return socks.create_connection(
                (address, target.port),
                timeout=timeout,
                proxy_type=kind,
                proxy_addr=parts.hostname,
                proxy_port=parts.port or 1080,
                proxy_rdns=False,
                proxy_username=user,
                proxy_password=password,
            )
        except socks.ProxyError as exc:
            raise OSError(f"SOCKS: {type(exc).__name__}") from None
    default_port = 443 if scheme == "https" else 80
    sock = socket.create_connection(
        (parts.hostname, parts.port or default_port), timeout
    )
    try:
        if scheme == "https":
            sock = tls_context().wrap_socket(sock, server_hostname=parts.hostname)
        where = (
            f"[{address}]:{target.port}"
            if ":" in address
            else f"{address}:{target.port}"
        )
        head = [f"CONNECT {where} HTTP/1.1", f"Host: {where}"]
        if user is not None:
            pair = f"{user}:{password or ''}".encode()
            head.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode())
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk or len(answer) > 16384:
                raise OSError("the proxy closed the tunnel")
            answer += chunk
        status = answer.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or status[1] != b"200":
            raise OSError("the proxy refused the tunnel")
        return sock
    except BaseException:
        sock.close()
        raise


def tls_context() -> ssl.SSLContext:
    """Certificate-checking TLS, with certifi's roots when installed (as requests)."""
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with requests
        return ssl.create_default_context()
