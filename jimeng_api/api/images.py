"""``POST /v1/images/generations``: text to image, OpenAI-compatible.

Synchronous by default; ``Prefer: respond-async`` answers 202 with a task.
"""

from __future__ import annotations

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue

from ..auth import caller
from ..schemas import image_generation_schema, load_json
from ..specs import clean_prompt, image_spec
from .waiting import respond

bp = Blueprint("images", __name__, url_prefix="/v1/images")


@bp.post("/generations")
def create_image() -> ResponseReturnValue:
    """Generate images for a prompt and return their URLs (or base64 data)."""
    who = caller()
    params = load_json(image_generation_schema)
    config = current_app.config
    spec = image_spec(
        config,
        model_name=params["model"],
        prompt=clean_prompt(params["prompt"], config["MAX_PROMPT_LENGTH"]),
        size_params={
            k: params[k] for k in ("size", "width", "height", "ratio", "resolution")
        },
        n=params["n"],
        negative_prompt=params["negative_prompt"] or params["negativePrompt"],
        sample_strength=params["sample_strength"],
        seed=params["seed"],
    )
    spec["response_format"] = params["response_format"]
    return respond(who, "images", spec, params.get("callback_url"))
