"""SafeFetcher against a real local HTTP server: SSRF forms, addresses, deadlines,
sizes and content checks (issue 16, points 1, 5 and 6)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from config import TestingConfig
from jimeng_api.errors import (
    InvalidRequestError,
    ResponseTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
)
from jimeng_api.fetcher import SafeFetcher
from jimeng_api.fetchlimits import sniff_image
from jimeng_api.urlcheck import URLRejected, is_public, parse_url
from tests.servers import ROOT

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
BIG = 4 * 1024 * 1024
BIG_BODY = PNG + b"\0" * BIG  # made once: the server's memory is not measured


class Handler(BaseHTTPRequestHandler):
    """Paths: /png, /html, /fake-png, /big[?chunked], /drip, /headers, /redirect-*."""

    protocol_version = "HTTP/1.1"
    seen_hosts: list[str] = []

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def send_body(self, body: bytes, content_type: str, chunked: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 65536):
                part = body[start : start + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        Handler.seen_hosts.append(self.headers.get("Host", ""))
        path = self.path.split("?")[0]
        if path == "/png":
            self.send_body(PNG, "image/png")
        elif path == "/html":
            self.send_body(b"<html>secret admin page</html>", "text/html")
        elif path == "/fake-png":
            self.send_body(b"<html>not an image</html>", "image/png")
        elif path == "/big":
            self.send_body(BIG_BODY, "image/png", "chunked" in self.path)
        elif path == "/drip":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n")
            self.drip(b"X-Drip: y\r\n" if "headers" in self.path else b"")
        elif path.startswith("/redirect-"):
            self.send_response(302)
            self.send_header("Location", self.path.split("?to=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)

    def drip(self, line: bytes) -> None:
        """Send a byte (or a header line) every 0.1 s, for up to 10 s."""
        if not line:
            self.wfile.write(b"Content-Length: 100000\r\n\r\n" + PNG)
        for _ in range(100):
            try:
                self.wfile.write(line or b"x")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.1)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up on purpose are the point of these tests


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def make_fetcher(**overrides: object) -> SafeFetcher:
    settings = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    settings.update(
        IMAGE_FETCH_ALLOWED_HOSTS=("byteimg.com", "127.0.0.1", "localhost"),
        FETCH_ALLOW_PRIVATE_HOSTS=("127.0.0.1",),
        IMAGE_FETCH_TIMEOUT=1.0,
    )
    settings.update(overrides)
    return SafeFetcher(settings)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:18555\\@p26-sign.byteimg.com/x.png",  # the bypass
        "http://evil\\.byteimg.com/x.png",
        "http://user:pw@p9.byteimg.com/x.png",
        "http://p9.byteimg.com@127.0.0.1/x.png",
        "http://p9.byteimg.com /x.png",
        "http://p9.byteimg.com\t/x.png",
        "http://p9.byte\x00img.com/x.png",
        "ftp://p9.byteimg.com/x.png",
        "file:///etc/passwd",
        "//p9.byteimg.com/x.png",
        "http:///x.png",
        "http://127.1/x.png",
        "http://0x7f000001/x.png",
        "http://2130706433/x.png",
        "http://0177.0.0.1/x.png",
        "http://[::1/x.png",
        "http://p9.byteimg.com:99999/x.png",
        "http://p9.byteimg.com:/x.png",
        "http://p9.byteimg.com%2e/x.png",
        "http://p9.byteimg.com/é.png",
    ],
)
def test_ambiguous_or_malformed_urls_are_refused(url):
    with pytest.raises(URLRejected):
        parse_url(url)


def test_hosts_are_normalised_before_the_allowlist():
    assert parse_url("HTTP://P9.ByteImg.COM./a.png?x=1#frag").url == (
        "http://p9.byteimg.com/a.png?x=1"
    )
    assert parse_url("https://例え.jp/").host == "xn--r8jz45g.jp"
    assert parse_url("http://[::FFFF:7f00:1]:8080/").host == "::ffff:7f00:1"


@pytest.mark.parametrize(
    "url",
    [
        "http://evilbyteimg.com/x.png",  # suffix without a label boundary
        "http://byteimg.com.evil.org/x.png",
        "http://example.org/x.png",
    ],
)
def test_cdn_images_come_only_from_allowed_hosts(url):
    with pytest.raises(UpstreamError) as caught:
        make_fetcher().fetch(url)
    assert caught.value.code == "image_host_not_allowed"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "192.168.0.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
        "240.0.0.1",
    ],
)
def test_private_and_reserved_addresses_are_not_public(address):
    import ipaddress

    assert not is_public(ipaddress.ip_address(address))


def test_loopback_is_refused_unless_explicitly_allowed(origin):
    port = origin.rsplit(":", 1)[1]
    strict = make_fetcher(FETCH_ALLOW_PRIVATE_HOSTS=())
    for url in (
        f"{origin}/png",
        f"http://localhost:{port}/png",
        f"http://[::ffff:127.0.0.1]:{port}/png",
    ):
        with pytest.raises(UpstreamError) as caught:
            strict.fetch(url)
        assert caught.value.code in ("url_not_allowed", "image_host_not_allowed")
    assert make_fetcher().fetch(f"{origin}/png").content == PNG


def test_user_urls_may_go_to_any_public_host_but_errors_name_the_param(origin):
    fetcher = make_fetcher(FETCH_ALLOW_PRIVATE_HOSTS=())
    with pytest.raises(InvalidRequestError) as caught:
        fetcher.fetch(f"{origin}/png", purpose="reference", param="image")
    assert caught.value.param == "image" and caught.value.code == "url_not_allowed"
    assert "/png" not in caught.value.message  # only scheme://host:port is shown


def test_resolves_once_and_connects_to_the_checked_address(origin, monkeypatch):
    port = int(origin.rsplit(":", 1)[1])
    calls = []

    def rebinding_dns(host, *args, **kwargs):
        calls.append(host)
        address = "127.0.0.1" if len(calls) == 1 else "10.9.9.9"  # changes after
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    fetcher = make_fetcher(
        IMAGE_FETCH_ALLOWED_HOSTS=("cdn.test",), FETCH_ALLOW_PRIVATE_HOSTS=("cdn.test",)
    )
    Handler.seen_hosts.clear()
    assert fetcher.fetch(f"http://cdn.test:{port}/png").content == PNG
    assert calls == ["cdn.test"]
    assert Handler.seen_hosts == [f"cdn.test:{port}"]  # original Host header


def test_redirects_are_checked_hop_by_hop(origin):
    fetcher = make_fetcher()
    ok = fetcher.fetch(f"{origin}/redirect-1?to={origin}/png")
    assert ok.content == PNG and ok.url.endswith("/png")
    with pytest.raises(UpstreamError) as caught:
        fetcher.fetch(f"{origin}/redirect-1?to=http://example.org/x.png")
    assert caught.value.code == "image_host_not_allowed"


@pytest.mark.parametrize(
    "path, code", [("/html", "not_an_image"), ("/fake-png", "not_an_image")]
)
def test_content_type_and_magic_bytes_are_checked(origin, path, code):
    with pytest.raises(UpstreamError) as caught:
        make_fetcher().fetch(origin + path)
    assert caught.value.code == code
    assert "secret admin page" not in caught.value.message


@pytest.mark.parametrize("path", ["/big", "/big?chunked"])
def test_size_cap_is_enforced_while_reading(origin, path):
    with pytest.raises(UpstreamError) as caught:
        make_fetcher(IMAGE_FETCH_MAX_BYTES=1024 * 1024).fetch(origin + path)
    assert caught.value.code == "fetch_too_large"


@pytest.mark.parametrize("path", ["/drip", "/drip?headers"])
def test_total_deadline_cuts_dripping_servers_without_gevent(origin, path):
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError) as caught:
        make_fetcher(IMAGE_FETCH_TIMEOUT=1.0).fetch(origin + path)
    assert time.monotonic() - started < 2.0
    assert caught.value.status_code == 504 and caught.value.code == "fetch_timeout"


GEVENT_SCRIPT = """
from gevent import monkey; monkey.patch_all()
import sys, time
from tests.test_fetcher import make_fetcher
started = time.monotonic()
try:
    make_fetcher(IMAGE_FETCH_TIMEOUT=1.0).fetch(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, round(time.monotonic() - started, 2))
"""


def test_total_deadline_under_gevent(origin):
    result = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT, origin + "/drip?headers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    name, seconds = result.stdout.split()
    assert name == "UpstreamTimeoutError" and float(seconds) < 2.0, result.stderr


def test_fetch_all_caps_the_total_and_bounds_memory(origin):
    fetcher = make_fetcher(IMAGE_FETCH_MAX_BYTES=8 * BIG, IMAGE_FETCH_TIMEOUT=20.0)
    urls = [f"{origin}/big?{i}" for i in range(8)]  # 8 x 4 MiB
    tracemalloc.start()
    with pytest.raises(ResponseTooLargeError) as caught:
        fetcher.fetch_all(urls, total_max_bytes=10 * 1024 * 1024)
    _, refused_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    fetched = fetcher.fetch_all(urls[:3], total_max_bytes=16 * 1024 * 1024)
    _, ok_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert caught.value.status_code == 400 and caught.value.param == "response_format"
    assert [len(f.content) for f in fetched] == [len(PNG) + BIG] * 3
    print(
        f"peak refused: {refused_peak / 2**20:.1f} MiB, 3x4 MiB: {ok_peak / 2**20:.1f}"
    )
    assert refused_peak < 2 * 10 * 1024 * 1024  # the cap, plus chunks in flight
    assert ok_peak < 2.5 * 3 * BIG  # the bodies once, plus one join at a time


def test_post_returns_the_status_and_refuses_private_addresses(origin):
    fetcher = make_fetcher(FETCH_ALLOW_PRIVATE_HOSTS=())
    assert fetcher.post(f"{origin}/hook", b"{}", {}, allow_private=True) == 204
    with pytest.raises(InvalidRequestError) as caught:
        fetcher.post(f"{origin}/hook", b"{}", {})
    assert caught.value.code == "url_not_allowed"


def test_image_formats_are_recognised():
    assert sniff_image(PNG) == "png"
    assert sniff_image(b"\xff\xd8\xff\xe0....") == "jpeg"
    assert sniff_image(b"GIF89a....") == "gif"
    assert sniff_image(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert sniff_image(b"\0\0\0\x1cftypavif") == "avif"
    assert sniff_image(b"\0\0\0\x18ftypheic") == "heic"
    assert sniff_image(b"<svg>") is None
