"""``POST /token/check``, ``/token/points``, ``/token/receive``: account status.

Passthrough mode reports the Bearer's session ids; pooled mode (with an API key)
reports the pool. Ids are shown masked, and every session gets its own result, so
one bad session never hides the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from gevent.pool import Pool as GreenPool

from ..auth import bearer_tokens, require_api_key
from ..errors import APIError
from ..extensions import get_accounts, get_client, get_limiter, get_roster
from ..logs import mask, token_id
from ..schemas import load_json, read_json_object, token_check_schema
from ..upstream import account_id, describe

log = logging.getLogger(__name__)

bp = Blueprint("token", __name__, url_prefix="/token")

MAX_PARALLEL = 8  # sessions queried at once (greenlets under gunicorn+gevent)


@bp.post("/check")
def check_token() -> ResponseReturnValue:
    """Tell whether a session id is logged in (a transport failure is a 502)."""
    require_api_key()
    params = load_json(token_check_schema)
    return {"live": get_client().is_live(params["token"])}


@bp.post("/points")
def retrieve_points() -> ResponseReturnValue:
    """Report the credit balance of each session."""
    tokens = account_tokens()
    _no_body()
    accounts = get_accounts()
    entries = for_each_session(tokens, lambda t: {"points": accounts.points(t)})
    return jsonify(described(tokens, entries))


@bp.post("/receive")
def receive_credits() -> ResponseReturnValue:
    """Claim the daily credits of each session and report the new balance."""
    tokens = account_tokens()
    _no_body()
    return jsonify(described(tokens, for_each_session(tokens, get_accounts().receive)))


def account_tokens() -> list[str]:
    """The accounts this request may inspect: the pool's, or the Bearer's."""
    roster = get_roster()
    if roster is None:
        tokens = bearer_tokens()
        limit = current_app.config["RATE_LIMIT_PER_ACCOUNT"]
        get_limiter().accounts([account_id(t) for t in tokens], limit)
        return tokens
    require_api_key()
    return roster.tokens()


def _no_body() -> None:
    """Accept no body or a JSON object (ignored); refuse others (400, 413)."""
    if request.get_data(cache=True).strip():
        read_json_object()


def for_each_session(
    tokens: Sequence[str], work: Callable[[str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run *work* for every session concurrently; one entry each, in order."""

    def entry(token: str) -> dict[str, Any]:
        try:
            result = work(token)
        except APIError as exc:
            result = {"error": _session_error(token, exc)}
        except Exception:  # a bug for one session must not hide the others
            log.exception("account query failed for %s", token_id(token))
            result = {"error": APIError().to_dict()["error"]}
        return {"token": mask(token), **result}

    group = GreenPool(max(1, min(len(tokens), MAX_PARALLEL)))
    return list(group.imap(entry, tokens))


def described(
    tokens: Sequence[str], entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Add each account's site and proxy (masked, None: direct) after its token."""
    default_proxy = current_app.config["UPSTREAM_PROXY"]
    return [
        {"token": entry.pop("token"), **describe(token, default_proxy), **entry}
        for token, entry in zip(tokens, entries, strict=True)
    ]


def _session_error(token: str, exc: APIError) -> dict[str, Any]:
    if exc.status_code >= 500:
        log.warning("%s for %s: %s", type(exc).__name__, token_id(token), exc.message)
    return exc.to_dict()["error"]
