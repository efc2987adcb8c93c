"""``GET /v1/models``: the models we can generate with, in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from ..catalog import Model, get_model, list_models

bp = Blueprint("models", __name__, url_prefix="/v1/models")


def model_object(model: Model) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": "jimeng",
    }


@bp.get("")
def list_all() -> ResponseReturnValue:
    """List every model."""
    return {"object": "list", "data": [model_object(m) for m in list_models()]}


@bp.get("/<path:model_id>")
def retrieve(model_id: str) -> ResponseReturnValue:
    """Describe one model (aliases resolve to their model)."""
    return model_object(get_model(model_id))
