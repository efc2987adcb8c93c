"""Rate limits per client address and per account, on the store (fixed
one-minute windows counted with the store's ``incr``), so they hold across
workers and hosts. Over the limit: 429 with ``Retry-After``.

The client address is the connecting one, or, when that is a trusted proxy
(``FORWARDED_ALLOW_IPS``, nginx on the same host by default), the last address
that proxy added to ``X-Forwarded-For``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

from flask import Flask, current_app, request

from .errors import RateLimitError
from .store import Store

WINDOW = 60  # seconds
#: routes that cost nothing upstream and are not counted
FREE = frozenset({"/ping", "/health", "/metrics", "/", "/openapi.json"})


def client_address() -> str:
    remote = request.remote_addr or "unknown"
    trusted = {a.strip() for a in current_app.config["FORWARDED_ALLOW_IPS"].split(",")}
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and ("*" in trusted or remote in trusted):
        return forwarded.split(",")[-1].strip()[:64] or remote
    return remote


class Limiter:
    """Counts hits per name and minute in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def hit(self, kind: str, name: str, limit: int, what: str) -> None:
        """Count one hit of *name*; raise 429 past *limit* a minute (0: off)."""
        if limit <= 0:
            return
        window = int(time.time() // WINDOW)
        digest = hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:16]
        count = self.store.incr(f"rate:{kind}:{digest}:{window}", WINDOW + 1)
        if count > limit:
            retry = max(1, int((window + 1) * WINDOW - time.time()) + 1)
            raise RateLimitError(
                f"Too many requests {what} (limit {limit} a minute); retry in "
                f"{retry} s.",
                code="rate_limited",
                retryable=True,
                headers={"Retry-After": str(retry)},
            )

    def accounts(self, accounts: Iterable[str], limit: int) -> None:
        for account in accounts:
            self.hit("acct", account, limit, "for this account")


def init_rate_limits(app: Flask, store: Store) -> Limiter:
    """Count every request by client address before it runs."""
    limiter = Limiter(store)

    def per_address() -> None:
        if request.method == "OPTIONS" or request.path in FREE:
            return
        if request.path.startswith(("/docs", "/static")):
            return
        config = current_app.config
        address = client_address()
        limiter.hit("ip", address, config["RATE_LIMIT_PER_IP"], "from this address")
        if request.path == "/token/check":
            limiter.hit(
                "check", address, config["RATE_LIMIT_TOKEN_CHECK"], "to /token/check"
            )

    app.before_request(per_address)
    return limiter
