"""Who may call, and with which Jimeng session ids."""

from __future__ import annotations

from flask import current_app, request

from .tokens import parse_bearer


def session_ids() -> list[str]:
    """Return the session ids this request may spend (from the Bearer header)."""
    limit = current_app.config["MAX_TOKENS_PER_REQUEST"]
    return parse_bearer(request.headers.get("Authorization"), limit)
