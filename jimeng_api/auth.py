"""Who is calling, and which accounts they may spend.

Passthrough mode: the Bearer carries the caller's own session ids (or cookie
strings). Pooled mode: the Bearer is one of ``API_KEYS`` and the accounts are
the server's. Either way the caller is named by a hash (``owner``) that is
never a secret: jobs and tasks are visible to the same owner only.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request

from .errors import AuthenticationError
from .extensions import get_limiter
from .jobs import Caller
from .roster import parse_bearer, pooled
from .upstream import account_id

MISSING_KEY = "Missing Authorization header: use 'Bearer <API key>'."
WRONG_KEY = (
    "Invalid API key. This server holds the Jimeng sessions itself: authenticate "
    "with one of its API keys, not with a session id."
)


def caller() -> Caller:
    """Return the caller of this request (401 if they cannot be told)."""
    if pooled(current_app.config):
        return Caller(owner=_key_owner(require_api_key()), tokens=None)
    tokens = bearer_tokens()
    accounts = sorted({account_id(t) for t in tokens})
    get_limiter().accounts(accounts, current_app.config["RATE_LIMIT_PER_ACCOUNT"])
    return Caller(owner="acct:" + _digest(",".join(accounts)), tokens=tokens)


def bearer_tokens() -> list[str]:
    config = current_app.config
    return parse_bearer(
        request.headers.get("Authorization"),
        config["MAX_TOKENS_PER_REQUEST"],
        allow_proxies=config["ALLOW_CLIENT_PROXIES"],
    )


def require_api_key() -> str | None:
    """In pooled mode, refuse a caller without one of ``API_KEYS``; return the
    key (None in an open pool or in passthrough mode)."""
    keys = current_app.config["API_KEYS"]
    if not pooled(current_app.config) or not keys:
        return None
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError(MISSING_KEY)
    if not _is_api_key(value.strip(), keys):
        raise AuthenticationError(WRONG_KEY)
    return value.strip()


def _is_api_key(given: str, keys: tuple[str, ...]) -> bool:
    """Compare with every key, in constant time for each (no early exit)."""
    candidate = given.encode("utf-8", "replace")
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate, key.encode("utf-8"))
    return found


def _key_owner(key: str | None) -> str:
    return "key:" + _digest(key) if key else "open"


def _digest(text: str) -> str:
    return hashlib.sha256(b"jimeng-api-owner:" + text.encode()).hexdigest()[:24]
