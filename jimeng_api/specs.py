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

from .catalog import ImageSize, get_model, resolve_size
from .errors import InvalidRequestError
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
) -> dict[str, Any]:
    """Resolve the model and size and build the upstream draft."""
    model = get_model(model_name or config["DEFAULT_MODEL"])
    if n is not None and n > model.max_n:
        raise InvalidRequestError(
            f"'{model.id}' makes at most {model.max_n} images per request.", param="n"
        )
    size = size or resolve_size(model, **(size_params or {}))
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
        draft_version=config[
            "JIMENG_DRAFT_VERSION" if model.modern else "JIMENG_LEGACY_DRAFT_VERSION"
        ],
        min_version=config["JIMENG_DRAFT_MIN_VERSION"],
    )
    return {"model": model.id, "n": n or 4, "draft": asdict(draft)}


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
