"""Signed webhook deliveries, in the background, retried with backoff.

Each delivery is a ``POST`` of a JSON body with these headers:

``Content-Type: application/json``
``X-Webhook-Id``: a random id, the same for every attempt (receivers dedupe on it)
``X-Webhook-Timestamp``: Unix seconds when this attempt was signed
``X-Signature-256``: ``sha256=<hex>``, the HMAC-SHA256 with ``WEBHOOK_SECRET`` of
``"<timestamp>." + body`` (only when a secret is set)

The timestamp is part of the signed text (as Stripe does), so a captured delivery
cannot be replayed later with a fresh timestamp: receivers should recompute the
HMAC over ``timestamp + "." + raw body``, compare with ``hmac.compare_digest`` and
refuse timestamps more than five minutes old.

Deliveries go through the ``SafeFetcher`` (strict URL parsing, one DNS answer,
a total deadline) and never to private, loopback or link-local addresses unless
``WEBHOOK_ALLOW_PRIVATE`` is on. Network errors, 5xx and 429 are retried up to
``WEBHOOK_MAX_ATTEMPTS`` times with exponential backoff (``WEBHOOK_RETRY_BACKOFF``
seconds, doubling, with jitter). Logs name only the receiver's host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import APIError, InvalidRequestError
from .fetcher import SafeFetcher

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))
MAX_BACKOFF = 300.0


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Return ``sha256=<hex>``: HMAC-SHA256 of ``b"<timestamp>." + body``."""
    text = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), text, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Check a signature as a receiver would (used by the tests; a reference)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def validate_callback_url(
    url: object, config: Mapping[str, Any], fetcher: SafeFetcher | None = None
) -> str | None:
    """Return the normalised callback URL of a request (None if absent), or raise
    ``InvalidRequestError`` with ``param="callback_url"``."""
    if url is None or url == "":
        return None
    if not isinstance(url, str):
        raise InvalidRequestError(
            "'callback_url' must be a string.", param="callback_url"
        )
    fetcher = fetcher or SafeFetcher(config)
    return fetcher.validate(
        url,
        purpose="webhook",
        param="callback_url",
        allow_private=bool(config.get("WEBHOOK_ALLOW_PRIVATE")),
    )


def _host(url: str) -> str:
    """The receiver's host, the only part of a webhook URL that is logged."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


class Webhooks:
    """Deliver payloads to webhook URLs in the background."""

    def __init__(self, config: Mapping[str, Any], fetcher: SafeFetcher) -> None:
        self.fetcher = fetcher
        self.secret = config.get("WEBHOOK_SECRET", "")
        self.default_url = config.get("WEBHOOK_URL", "") or None
        self.max_attempts = int(config.get("WEBHOOK_MAX_ATTEMPTS", 5))
        self.backoff = float(config.get("WEBHOOK_RETRY_BACKOFF", 2.0))
        self.timeout = float(config.get("WEBHOOK_TIMEOUT", 10.0))
        self.allow_private = bool(config.get("WEBHOOK_ALLOW_PRIVATE", False))
        self._running: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def deliver(self, url: str | None, payload: Mapping[str, Any]) -> None:
        """Send *payload* to *url* (default ``WEBHOOK_URL``) in the background.

        Under gunicorn's gevent workers the thread is a greenlet."""
        url = url or self.default_url
        if not url:
            return
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        thread = threading.Thread(
            target=self._run, args=(url, body, uuid.uuid4().hex), daemon=True
        )
        with self._lock:
            self._running.add(thread)
        thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the deliveries in progress; return whether all have ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                running = list(self._running)
            if not running:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            running[0].join(left)

    def _run(self, url: str, body: bytes, webhook_id: str) -> None:
        try:
            self.send(url, body, webhook_id)
        except Exception:  # a bug must not kill a worker greenlet silently
            log.exception("webhook %s to %s crashed", webhook_id, _host(url))
        finally:
            with self._lock:
                self._running.discard(threading.current_thread())

    def send(self, url: str, body: bytes, webhook_id: str) -> bool:
        """Deliver *body*, retrying as the module docstring says; return success."""
        host = _host(url)
        for attempt in range(1, self.max_attempts + 1):
            outcome, retry = self._attempt(url, body, webhook_id)
            if outcome == "delivered":
                log.info(
                    "webhook %s delivered to %s (attempt %d)", webhook_id, host, attempt
                )
                return True
            if not retry or attempt == self.max_attempts:
                log.warning(
                    "webhook %s to %s given up after %d attempt(s): %s",
                    webhook_id,
                    host,
                    attempt,
                    outcome,
                )
                return False
            pause = self._pause(attempt)
            log.info(
                "webhook %s to %s: %s; retry in %.1f s",
                webhook_id,
                host,
                outcome,
                pause,
            )
            time.sleep(pause)
        return False

    def _attempt(self, url: str, body: bytes, webhook_id: str) -> tuple[str, bool]:
        """Return (outcome, whether to retry) for one POST."""
        try:
            status = self.fetcher.post(
                url,
                body,
                self.headers(body, webhook_id),
                timeout=self.timeout,
                allow_private=self.allow_private,
            )
        except InvalidRequestError as exc:
            return _reason(exc), exc.code in ("fetch_failed", "fetch_timeout")
        except APIError as exc:
            return _reason(exc), True
        if 200 <= status < 300:
            return "delivered", False
        return f"HTTP {status}", status in RETRY_STATUSES

    def headers(self, body: bytes, webhook_id: str) -> dict[str, str]:
        """The headers of one attempt (signed now)."""
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Id": webhook_id,
            "X-Webhook-Timestamp": timestamp,
        }
        if self.secret:
            headers["X-Signature-256"] = sign(self.secret, timestamp, body)
        return headers

    def _pause(self, attempt: int) -> float:
        base = min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1))
        return base * random.uniform(0.8, 1.2)


def _reason(exc: APIError) -> str:
    return f"{exc.code}: {exc.message}"
