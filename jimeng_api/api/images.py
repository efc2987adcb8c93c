"""``POST /v1/images/generations``: text to image, OpenAI-compatible."""

from __future__ import annotations

import time

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue

from ..auth import session_ids
from ..extensions import get_generator
from ..images import build_request, clean_prompt, image_items
from ..schemas import image_generation_schema, load_json

bp = Blueprint("images", __name__, url_prefix="/v1/images")


@bp.post("/generations")
def create_image() -> ResponseReturnValue:
    """Generate images for a prompt and return their URLs (or base64 data)."""
    tokens = session_ids()
    params = load_json(image_generation_schema)
    config = current_app.config
    job = build_request(
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
    generator = get_generator()
    urls = generator.run(tokens, job.draft, job.model.id)
    data = image_items(generator.client, urls, params["response_format"])
    return {"created": int(time.time()), "data": data}
