"""``POST /token/check``, ``/token/points``, ``/token/receive``: account status.

Passthrough mode reports the Bearer's session ids; pooled mode (with an API key)
reports the pool. Ids are shown masked, and every session gets its own result, so
one bad session never hides the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from gevent.pool import Pool as GreenPool

from ..auth import account_ids, require_api_key
from ..errors import APIError
from ..extensions import get_generator
from ..logs import mask, token_id
from ..pool import AccountPool
from ..schemas import load_json, read_json_object, token_check_schema
from ..upstream import JimengClient

log = logging.getLogger(__name__)

bp = Blueprint("token", __name__, url_prefix="/token")

MAX_PARALLEL = 8  # sessions queried at once (greenlets under gunicorn+gevent)


@bp.post("/check")
def check_token() -> ResponseReturnValue:
    """Tell whether a session id is logged in (a transport failure is a 502)."""
    require_api_key()
    params = load_json(token_check_schema)
    return {"live": get_generator().client.is_live(params["token"])}


@bp.post("/points")
def retrieve_points() -> ResponseReturnValue:
    """Report the credit balance of each session."""
    tokens, pool = account_ids()
    _no_body()
    client = get_generator().client

    def points(token: str) -> dict[str, Any]:
        balance = client.credits(token)
        if pool:
            pool.remember(token, balance)
        return {"points": balance}

    return jsonify(for_each_session(tokens, points))


@bp.post("/receive")
def receive_credits() -> ResponseReturnValue:
    """Claim the daily credits of each session and report the new balance."""
    tokens, pool = account_ids()
    _no_body()
    client = get_generator().client
    return jsonify(for_each_session(tokens, lambda t: _receive(client, pool, t)))


def _no_body() -> None:
    """Accept no body or a JSON object (ignored); refuse others (400, 413)."""
    if request.get_data(cache=True).strip():
        read_json_object()


def _receive(
    client: JimengClient, pool: AccountPool | None, token: str
) -> dict[str, Any]:
    """Claim, then read the balance; a refused claim still reports the balance."""
    result: dict[str, Any] = {"received": False}
    error = None
    try:
        grant = client.receive_credits(token)
        quota = grant.get("receive_quota")
        result = {"received": True, "receiveQuota": quota}
    except APIError as exc:  # e.g. ret 1014: already claimed today
        error = exc
    try:
        result["credits"] = client.credits(token)
    except APIError as exc:
        error = error or exc
    else:
        if pool:
            pool.remember(token, result["credits"], claimed=result["received"])
    if error:
        result["error"] = _session_error(token, error)
    return result


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


def _session_error(token: str, exc: APIError) -> dict[str, Any]:
    if exc.status_code >= 500:
        log.warning("%s for %s: %s", type(exc).__name__, token_id(token), exc.message)
    return exc.to_dict()["error"]
