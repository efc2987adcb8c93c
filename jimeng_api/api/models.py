"""``GET /v1/models``: the models we can generate with, in OpenAI's list shape,
each with what it supports (``max_n``, ``resolutions``, ...)."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from ..catalog import get_model
from ..errors import APIError
from ..extensions import get_model_list, get_roster
from ..model_list import describe
from ..roster import parse_bearer
from ..upstream.video import get_video_model, is_video_model
from ..videos import describe_video

bp = Blueprint("models", __name__, url_prefix="/v1/models")


def _token() -> str | None:
    """An account to read the site's list with: the pool's first, or the
    caller's own session id; None (the static catalogue) without either."""
    roster = get_roster()
    if roster is not None:
        tokens = roster.tokens()
        return tokens[0] if tokens else None
    header = request.headers.get("Authorization")
    try:
        return parse_bearer(header, 64)[0] if header else None
    except APIError:
        return None


@bp.get("")
def list_all() -> ResponseReturnValue:
    """List every model the site offers (the catalogue when it cannot tell)."""
    return {"object": "list", "data": get_model_list().models(_token())}


@bp.get("/<path:model_id>")
def retrieve(model_id: str) -> ResponseReturnValue:
    """Describe one model (aliases resolve to their model)."""
    if is_video_model(model_id):
        return describe_video(get_video_model(model_id))
    return describe(get_model(model_id), None)
