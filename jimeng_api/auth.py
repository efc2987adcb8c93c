"""Who may call, and with which Jimeng session ids.

Passthrough mode: the Bearer carries the caller's own session ids. Pooled mode: the
Bearer is one of ``API_KEYS`` and the sessions come from the server's pool.
"""

from __future__ import annotations

import hmac

from flask import current_app, request

from .errors import AuthenticationError
from .pool import AccountPool, get_pool
from .tokens import parse_bearer

MISSING_KEY = "Missing Authorization header: use 'Bearer <API key>'."
WRONG_KEY = (
    "Invalid API key. This server holds the Jimeng sessions itself: authenticate "
    "with one of its API keys, not with a session id."
)


def session_ids() -> list[str]:
    """Return the session ids this request may spend, in the order to try them."""
    pool = get_pool()
    if pool is None:
        return _bearer_ids()
    require_api_key()
    return pool.candidates()


def account_ids() -> tuple[list[str], AccountPool | None]:
    """Return the sessions whose accounts this request may inspect, and the pool."""
    pool = get_pool()
    if pool is None:
        return _bearer_ids(), None
    require_api_key()
    return pool.sessions(), pool


def require_api_key() -> None:
    """In pooled mode, refuse a caller without one of ``API_KEYS``.

    No-op in passthrough mode, and in an open pool (``ALLOW_OPEN_POOL``, no keys).
    """
    keys = current_app.config["API_KEYS"]
    if get_pool() is None or not keys:
        return
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError(MISSING_KEY)
    if not _is_api_key(value.strip(), keys):
        raise AuthenticationError(WRONG_KEY)


def _is_api_key(given: str, keys: tuple[str, ...]) -> bool:
    """Compare with every key, in constant time for each (no early exit)."""
    candidate = given.encode("utf-8", "replace")
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate, key.encode("utf-8"))
    return found


def _bearer_ids() -> list[str]:
    limit = current_app.config["MAX_TOKENS_PER_REQUEST"]
    return parse_bearer(request.headers.get("Authorization"), limit)
