"""Webhooks against a real local receiver: delivery, signature, retries, refusals."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from config import TestingConfig
from jimeng_api.errors import InvalidRequestError
from jimeng_api.fetcher import SafeFetcher
from jimeng_api.webhooks import Webhooks, sign, validate_callback_url, verify

SECRET = "whsec-test-0123456789"


class Receiver(ThreadingHTTPServer):
    """Records every delivery; answers the statuses queued in ``script``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int] = []
        self.event = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook?token=abc"

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        server: Receiver = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.deliveries.append((dict(self.headers.items()), body))
        status = server.script.pop(0) if server.script else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        server.event.set()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def settings(**overrides: object) -> dict:
    base = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    base.update(
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_ALLOW_PRIVATE=True,
        WEBHOOK_RETRY_BACKOFF=0.05,
        WEBHOOK_MAX_ATTEMPTS=4,
        WEBHOOK_TIMEOUT=2.0,
    )
    base.update(overrides)
    return base


def webhooks(**overrides: object) -> Webhooks:
    config = settings(**overrides)
    return Webhooks(config, SafeFetcher(config))


def test_delivery_is_signed_and_verifiable(receiver):
    hooks = webhooks()
    hooks.deliver(receiver.url, {"id": "task-1", "status": "completed", "名": "猫"})
    assert hooks.wait(10)
    ((headers, body),) = receiver.deliveries
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"id": "task-1", "status": "completed", "名": "猫"}
    timestamp, signature = headers["X-Webhook-Timestamp"], headers["X-Signature-256"]
    assert abs(int(timestamp) - time.time()) < 60
    assert verify(SECRET, timestamp, body, signature)
    assert not verify(SECRET, str(int(timestamp) + 1), body, signature)  # no replay
    assert len(headers["X-Webhook-Id"]) == 32


def test_sign_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"123.{}", hashlib.sha256).hexdigest()
    assert sign("k", 123, b"{}") == f"sha256={expected}"


def test_retried_with_backoff_after_5xx_and_429(receiver):
    receiver.script = [500, 429, 502]
    hooks = webhooks()
    started = time.monotonic()
    hooks.deliver(receiver.url, {"id": "t"})
    assert hooks.wait(10)
    assert len(receiver.deliveries) == 4  # 3 failures, then delivered
    assert len({h["X-Webhook-Id"] for h, _ in receiver.deliveries}) == 1
    assert time.monotonic() - started >= 0.05 + 0.1 + 0.2 - 0.1  # doubling pauses


def test_client_errors_are_not_retried(receiver):
    receiver.script = [400]
    hooks = webhooks()
    hooks.deliver(receiver.url, {"id": "t"})
    assert hooks.wait(10)
    assert len(receiver.deliveries) == 1


def test_gives_up_after_max_attempts_and_logs_only_the_host(receiver, caplog):
    receiver.script = [503] * 10
    hooks = webhooks(WEBHOOK_MAX_ATTEMPTS=3)
    with caplog.at_level(logging.INFO, logger="jimeng_api.webhooks"):
        hooks.deliver(receiver.url, {"id": "t"})
        assert hooks.wait(10)
    assert len(receiver.deliveries) == 3
    assert "given up after 3" in caplog.text
    assert "127.0.0.1" in caplog.text and "token=abc" not in caplog.text
    assert "/hook" not in caplog.text


def test_private_addresses_are_refused_unless_allowed(receiver, caplog):
    hooks = webhooks(WEBHOOK_ALLOW_PRIVATE=False)
    with caplog.at_level(logging.INFO, logger="jimeng_api.webhooks"):
        hooks.deliver(receiver.url, {"id": "t"})
        assert hooks.wait(10)
    assert receiver.deliveries == []  # never connected
    assert "url_not_allowed" in caplog.text and "given up after 1" in caplog.text


def test_unsigned_without_a_secret_and_default_url(receiver):
    hooks = webhooks(WEBHOOK_SECRET="", WEBHOOK_URL=receiver.url)
    hooks.deliver(None, {"id": "t"})
    assert hooks.wait(10)
    ((headers, _),) = receiver.deliveries
    assert "X-Signature-256" not in headers


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost/hook",
        "ftp://example.org/hook",
        "http://user:pw@example.org/hook",
        "http://example.org\\@127.0.0.1/",
        42,
    ],
)
def test_callback_urls_are_validated_at_request_time(url):
    with pytest.raises(InvalidRequestError) as caught:
        validate_callback_url(url, settings(WEBHOOK_ALLOW_PRIVATE=False))
    assert caught.value.param == "callback_url"


def test_callback_url_to_loopback_allowed_for_tests(receiver):
    config = settings(WEBHOOK_ALLOW_PRIVATE=True)
    assert validate_callback_url(receiver.url, config) == receiver.url
    assert validate_callback_url(None, config) is None
