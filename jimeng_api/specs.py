"""From validated request parameters to a job spec: the model and the draft.

A spec is plain JSON (it is stored with the job): ``kind``-independent fields
``model``, ``n``, ``draft`` (the upstream ``Draft`` as a dict), plus what the
endpoint needs to render its answer (``response_format``, chat's ids).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from config import parse_quality_tiers

from .catalog import Model, get_model
from .errors import InvalidRequestError
from .references import QUALITY_ALIASES, require_image_to_image
from .sizes import ImageSize, nearest_ratio, resolve_size, size_table
from .upstream import Draft

MAX_N_PER_SUBMIT = 4  # the web UI offers 1-4 per submit (protocol-2026-12 §4)


def clean_prompt(prompt: str | None, limit: int, param: str = "prompt") -> str:
    """Return the stripped prompt, or raise a 400 if it is empty or too long."""
    text = (prompt or "").strip()
    if not text:
        raise InvalidRequestError("The prompt is empty.", param=param)
    if len(text) > limit:
        raise InvalidRequestError(
            f"The prompt is too long ({len(text)} characters; limit {limit}).",
            param=param,
        )
    return text


def draft_version(config: Mapping[str, Any], model_id: str, modern: bool) -> str:
    """The draft ``version`` for *model_id*: ``JIMENG_DRAFT_VERSIONS``
    (``model=version`` pairs) first, then the modern or legacy default."""
    for pair in config["JIMENG_DRAFT_VERSIONS"]:
        name, _, version = pair.partition("=")
        if name.strip() == model_id and version.strip():
            return version.strip()
    return config["JIMENG_DRAFT_VERSION" if modern else "JIMENG_LEGACY_DRAFT_VERSION"]


def image_spec(
    config: Mapping[str, Any],
    *,
    model_name: str | None,
    prompt: str,
    size: ImageSize | None = None,
    size_params: Mapping[str, Any] | None = None,
    n: int | None = None,
    negative_prompt: str | None = None,
    sample_strength: float = 0.5,
    seed: int | None = None,
    references: list[dict[str, Any]] | None = None,
    quality: str | None = None,
) -> dict[str, Any]:
    """Resolve the model and size and build the upstream draft.

    *references* (``reference_stash.stash`` entries) make it an image-to-image
    draft; *quality* picks the resolution tier when no size says one."""
    model = get_model(model_name or config["DEFAULT_MODEL"])
    if references:
        require_image_to_image(model, len(references))
    if n is not None and n > model.max_n:
        raise InvalidRequestError(
            f"'{model.id}' makes at most {model.max_n} images per request.", param="n"
        )
    size = size or resolve_size(
        model,
        **sized(config, model, size_params, quality, references),
        table=size_table(config["JIMENG_SIZE_TABLE"]),
    )
    draft = Draft(
        model_key=model.key,
        prompt=prompt,
        negative_prompt=(negative_prompt or "").strip(),
        width=size.width,
        height=size.height,
        image_ratio=size.image_ratio,
        resolution_type=size.resolution_type,
        sample_strength=sample_strength,
        seed=random.randrange(2**32) if seed is None else seed,
        n=n,
        draft_version=draft_version(config, model.id, model.modern or bool(references)),
        min_version=config["JIMENG_DRAFT_MIN_VERSION"],
    )
    spec = {"model": model.id, "n": n or 4, "draft": asdict(draft)}
    spec["size"] = f"{size.width}x{size.height}"
    spec["quality"] = quality_name(quality, size.resolution_type)
    if references:
        spec["references"] = references
    return spec


def sized(
    config: Mapping[str, Any],
    model: Model,
    size_params: Mapping[str, Any] | None,
    quality: str | None,
    references: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The size fields, completed: ``quality`` gives the resolution tier
    (``IMAGE_QUALITY_TIERS``) and the first reference the ratio, where the
    request leaves them open (no size, or ``size: auto``)."""
    params = dict(size_params or {})
    size = params.get("size")
    open_size = size is None or (isinstance(size, str) and size.strip() == "auto")
    if not open_size or params.get("width") is not None:
        return params
    if params.get("height") is not None:
        return params
    tiers = parse_quality_tiers(config["IMAGE_QUALITY_TIERS"])
    tier = tiers.get(QUALITY_ALIASES.get(quality or "", quality or ""))
    if tier and params.get("resolution") is None:
        params["resolution"] = "2k" if tier == "4k" and not model.modern else tier
    if references and params.get("ratio") is None:
        first = references[0]
        params["ratio"] = nearest_ratio(first["width"], first["height"])
    return params


def quality_name(quality: str | None, tier: str) -> str:
    """The ``quality`` an OpenAI response reports: the one asked for, else the
    tier's (1k low, 2k medium, 4k high)."""
    if quality and quality != "auto":
        return QUALITY_ALIASES.get(quality, quality)
    return {"1k": "low", "2k": "medium"}.get(tier, "high")


def split(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Split a spec asking for more than ``MAX_N_PER_SUBMIT`` images into specs
    of at most that many (8 → 4 + 4): the web client submits 1-4 at a time, and
    each part is paid for only if it is delivered."""
    n = spec["n"]
    if n <= MAX_N_PER_SUBMIT:
        return [spec]
    parts = []
    while n > 0:
        take = min(n, MAX_N_PER_SUBMIT)
        draft = {**spec["draft"], "n": take, "seed": spec["draft"]["seed"] + len(parts)}
        parts.append({**spec, "n": take, "draft": draft})
        n -= take
    return parts
