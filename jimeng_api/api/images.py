"""``POST /v1/images/generations``: text to image, OpenAI-compatible.

Synchronous by default; ``Prefer: respond-async`` answers 202 with a task;
``stream: true`` answers with image events (see ``image_stream``). References
in ``image`` (or ``images``), as Volcengine Ark and the forks take them, make
it image to image (see ``api/edits.py``).
"""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from ..auth import caller
from ..schemas import load_json
from ..schemas_images import image_request_schema
from .edits import answer, build_spec, json_sources

bp = Blueprint("images", __name__, url_prefix="/v1/images")


@bp.post("/generations")
def create_image() -> ResponseReturnValue:
    """Generate images for a prompt and return their URLs (or base64 data).

    `image`/`images` (URLs, data: URIs, base64; up to 10) make it image to
    image. `stream: true` answers with `image_generation.*` events (SSE)."""
    who = caller()
    params = load_json(image_request_schema)
    spec = build_spec(params, json_sources(params), prompt=params["prompt"])
    return answer(who, spec, params, prefix="image_generation")
