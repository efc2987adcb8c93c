"""From validated request parameters to a Draft, and from URLs to response items."""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gevent.pool

from .catalog import ImageSize, Model, get_model, resolve_size
from .drafts import Draft
from .errors import APIError, InvalidRequestError
from .upstream import JimengClient


@dataclass(frozen=True)
class ImageRequest:
    """A validated generation: the model and the upstream draft."""

    model: Model
    draft: Draft


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


def build_request(
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
) -> ImageRequest:
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
    return ImageRequest(model, draft)


def image_items(
    client: JimengClient, urls: list[str], response_format: str
) -> list[dict[str, str]]:
    """Return the ``data`` items: URLs, or the images fetched concurrently."""
    if response_format != "b64_json":
        return [{"url": url} for url in urls]
    group = gevent.pool.Group()
    jobs = [group.spawn(client.fetch_image, url) for url in urls]
    group.join()
    for job in jobs:
        if not job.successful():
            error = job.exception
            raise error if isinstance(error, APIError) else APIError()
    return [{"b64_json": base64.b64encode(job.value).decode()} for job in jobs]
