"""``POST /v1/images/edits`` (and ``/v1/images/compositions``): image to image.

OpenAI's ``images.edit``: multipart with ``image`` (one file) or ``image[]``
(several, in order), ``prompt``, ``model``, ``n``, ``size``, ``quality``,
``response_format``, ``output_format``, ``stream``, ``partial_images``. A JSON
body works too, with ``image`` (or ``images``) as a URL, a ``data:`` URI, base64,
an object ``{"url"|"b64_json", "strength"}``, or a list of them. 1-10
references; which models take them is ``references.IMAGE_TO_IMAGE``.

``mask`` is refused with a 400 (``param: "mask"``, ``code: "mask_not_supported"``):
Jimeng has no inpainting, and an edit that silently ignored the mask would
repaint (and charge for) the whole image.

``/v1/images/compositions`` is the same endpoint under the name the iptag fork
used (its ``images`` field); its answer adds ``input_images`` and
``composition_type``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage

from ..auth import caller
from ..catalog import get_model
from ..errors import InvalidRequestError
from ..extensions import get_fetcher, get_generations, get_store
from ..image_stream import image_events
from ..jobs import Caller
from ..reference_stash import describe, stash
from ..references import (
    Source,
    prepare_all,
    require_image_to_image,
    sources_from_json,
    too_large,
)
from ..schemas import load_json, read_json_object
from ..schemas_images import image_edit_form_schema, image_request_schema
from ..specs import clean_prompt, image_spec
from ..sse import SSE_HEADERS
from .waiting import (
    accepted,
    finished,
    idempotency,
    job_error,
    result_headers,
    wait,
    wants_async,
)

bp = Blueprint("edits", __name__, url_prefix="/v1/images")

FILE_FIELDS = ("image", "image[]", "images", "images[]")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
REFERENCE_TTL_MARGIN = 600.0  # the stashed bytes outlive the job's deadline


@bp.post("/edits")
def create_edit() -> ResponseReturnValue:
    """Generate images from a prompt and 1-10 reference images.

    Multipart (OpenAI's `images.edit`: `image` or `image[]` files) or JSON
    (`image`/`images`: URLs, data: URIs, base64). `mask` is refused: Jimeng
    cannot inpaint. `stream: true` answers with image events (SSE)."""
    return _edit(composition=False)


@bp.post("/compositions")
def create_composition() -> ResponseReturnValue:
    """The same as `/v1/images/edits` (the iptag fork's name for it).

    The answer adds `input_images` and `composition_type`."""
    return _edit(composition=True)


def _edit(*, composition: bool) -> ResponseReturnValue:
    who = caller()
    params, sources, digest = read_edit()
    if not sources:
        raise InvalidRequestError(
            "An edit needs at least one reference image: send 'image' (one file) "
            "or 'image[]' (several), or JSON 'image' with URLs or base64.",
            param="image",
            code="image_required",
        )
    spec = build_spec(params, sources, prompt=params["prompt"])
    if composition:
        spec["composition"] = True
    return answer(who, spec, params, prefix="image_edit", digest=digest)


# --- reading the request --------------------------------------------------------


def read_edit() -> tuple[dict[str, Any], list[Source], str | None]:
    """The edit's parameters and references, from multipart or JSON, and for
    multipart the digest ``Idempotency-Key`` compares (None: the raw body's)."""
    if request.mimetype in FORM_TYPES:
        return _read_form()
    if request.mimetype in ("application/json", "") or request.is_json:
        body = read_json_object()
        params = load_json(image_request_schema, body)
        refuse_mask(body.get("mask"))
        return params, json_sources(params), None
    raise InvalidRequestError(
        f"Send multipart/form-data (as OpenAI's images.edit does) or a JSON "
        f"object, not '{request.mimetype[:60]}'.",
        code="unsupported_content_type",
    )


def _read_form() -> tuple[dict[str, Any], list[Source], str]:
    form, files = request.form, request.files
    refuse_mask(files.get("mask") or form.get("mask"))
    fields = {k: form.get(k) for k in form if k not in FILE_FIELDS}
    params = load_json(image_edit_form_schema, fields)
    limit = int(current_app.config["REFERENCE_MAX_BYTES"])
    sources: list[Source] = []
    for name in FILE_FIELDS:
        parts: list[FileStorage | str] = [*files.getlist(name), *form.getlist(name)]
        base = name.removesuffix("[]")
        listed = name.endswith("[]") or len(parts) > 1
        for part in parts:
            param = f"{base}[{len(sources)}]" if listed else base
            if isinstance(part, FileStorage):
                data = part.stream.read(limit + 1)
                if len(data) > limit:
                    raise too_large(param, limit)
                sources.append(Source(data, param))
            else:
                sources.append(Source(part, param))
    return params, sources, form_digest(fields, sources)


def form_digest(fields: dict[str, Any], sources: list[Source]) -> str:
    """A multipart request's identity for ``Idempotency-Key``: its fields and
    files, not its bytes (the boundary differs on each retry of one request)."""
    digest = hashlib.sha256()
    for name in sorted(fields):
        digest.update(f"{name}\0{fields[name]}\0".encode())
    for source in sources:
        value = source.value
        data = value if isinstance(value, bytes) else value.encode()
        digest.update(f"{source.param}\0".encode() + hashlib.sha256(data).digest())
    return digest.hexdigest()


def refuse_mask(mask: Any) -> None:
    if mask:
        raise InvalidRequestError(
            "Jimeng cannot edit inside a mask (no inpainting): send the edit "
            "without 'mask'; the prompt and the reference images steer the "
            "whole new image.",
            param="mask",
            code="mask_not_supported",
        )


def json_sources(params: dict[str, Any]) -> list[Source]:
    return [
        *sources_from_json(params.get("image"), "image"),
        *sources_from_json(params.get("images"), "images"),
    ]


# --- from parameters to a job -------------------------------------------------------


def build_spec(
    params: dict[str, Any],
    sources: list[Source],
    *,
    prompt: str,
    prompt_param: str = "prompt",
    model_name: str | None = None,
    size: Any = None,
    kind: str = "images",
) -> dict[str, Any]:
    """Check and stash the references (before any job exists: bad input costs
    nothing), then build the spec."""
    config = current_app.config
    if params.get("background") == "transparent":
        raise InvalidRequestError(
            "Jimeng renders opaque images only: use background 'auto' or 'opaque'.",
            param="background",
        )
    name = model_name or params.get("model") or config["DEFAULT_MODEL"]
    model = get_model(name)
    strength = params.get("sample_strength")
    strength = 0.5 if strength is None else strength
    prepared, entries = [], None
    if sources:
        require_image_to_image(model, len(sources), sources[0].param.split("[")[0])
        prepared = prepare_all(sources, get_fetcher(), config)
        entries = describe(prepared, strength)
    spec = image_spec(
        config,
        model_name=model.id,
        prompt=clean_prompt(prompt, config["MAX_PROMPT_LENGTH"], prompt_param),
        size=size,
        size_params=None
        if size is not None
        else {
            k: params.get(k) for k in ("size", "width", "height", "ratio", "resolution")
        },
        n=params.get("n"),
        negative_prompt=params.get("negative_prompt") or params.get("negativePrompt"),
        sample_strength=strength,
        seed=params.get("seed"),
        references=entries,
        quality=params.get("quality"),
    )
    if entries:
        ttl = config["GENERATION_TIMEOUT"] + REFERENCE_TTL_MARGIN
        stash(get_store(), spec["references"], prepared, ttl)
    if kind == "images":
        spec["response_format"] = (
            "url" if params.get("stream") else params.get("response_format") or "url"
        )
        spec["output_format"] = params.get("output_format")
        spec["output_compression"] = params.get("output_compression")
    return spec


def answer(
    who: Caller,
    spec: dict[str, Any],
    params: dict[str, Any],
    *,
    prefix: str,
    digest: str | None = None,
) -> ResponseReturnValue:
    """Sync, async (``Prefer: respond-async``) or, with ``stream``, image events."""
    key = idempotency(digest)
    job = get_generations().start(
        who,
        "images",
        spec,
        idempotency=key,
        callback_url=params.get("callback_url"),
    )
    if job["status"] == "failed":
        raise job_error(job)
    if wants_async():
        return accepted(job)
    if not params.get("stream"):
        job = finished(job)
        return job["result"], 200, result_headers(job)
    fetcher, generations = get_fetcher(), get_generations()

    def fetch(url: str) -> bytes:  # through the account's proxy, if it has one
        proxy = generations.download_proxy(generations.jobs.get(job["id"]))
        return fetcher.fetch(url, purpose="image", proxy=proxy).content

    tick = current_app.config["SSE_KEEPALIVE_INTERVAL"]
    body = image_events(
        job,
        wait(job, tick),
        fetch=fetch,
        error_of=job_error,
        prefix=prefix,
        partial_images=params.get("partial_images") or 0,
        keepalive=tick,
    )
    headers = {**SSE_HEADERS, "X-Task-Id": job["id"]}
    return Response(body, mimetype="text/event-stream", headers=headers)
