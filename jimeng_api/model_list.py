"""Which models ``/v1/models`` lists, and what each supports.

The static catalogue (``catalog.py``) is the fallback. When a caller's account
is at hand, the site's own list (``get_common_config``) is read, cached for
``MODEL_LIST_TTL`` seconds, and decides which catalogue models are offered;
a model Jimeng answered ``ret 2061`` for is hidden as retired. Every entry says
what it supports in extra fields (``max_n``, ``resolutions``, ...), which the
playground reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from .catalog import Model, list_models
from .errors import APIError
from .sizes import RESOLUTIONS
from .store import Store, StoreError
from .upstream import JimengClient
from .upstream.video import VIDEO_MODELS
from .videos import describe_video

log = logging.getLogger(__name__)

RETIRED_MEMORY = 7 * 86400.0


def model_keys(table: Any, depth: int = 0) -> Iterator[str]:
    """Every ``model_req_key`` in the site's table, wherever it is nested."""
    if depth > 8:
        return
    if isinstance(table, dict):
        key = table.get("model_req_key")
        if isinstance(key, str) and key:
            yield key
        for value in table.values():
            yield from model_keys(value, depth + 1)
    elif isinstance(table, list):
        for value in table:
            yield from model_keys(value, depth + 1)


def describe(model: Model, live: bool | None) -> dict[str, Any]:
    """The model object: OpenAI's four fields and what the model supports."""
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": "jimeng",
        "max_n": model.max_n,
        "resolutions": list(RESOLUTIONS if model.modern else RESOLUTIONS[:2]),
        "default_resolution": model.default_resolution,
        "max_references": model.max_references,
        "image_to_image": model.max_references > 0,
        "kind": "image",
        "listed_by_site": live,
    }


class ModelList:
    """The catalogue, narrowed by the site's live list when it answers."""

    def __init__(self, client: JimengClient, store: Store, config: Any) -> None:
        self.client, self.store = client, store
        self.ttl = config["MODEL_LIST_TTL"]
        self._live: set[str] | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def models(self, token: str | None) -> list[dict[str, Any]]:
        live = self._live_keys(token)
        entries = []
        for model in list_models():
            if self._retired(model):
                continue
            listed = None if live is None else model.key in live
            if listed is False:
                continue
            entries.append(describe(model, listed))
        for video in VIDEO_MODELS:  # the static video catalogue (§5)
            if not self._key_retired(video.key):
                entries.append(describe_video(video))
        return entries

    def retire(self, model_key: str) -> None:
        """Jimeng said the model is gone (ret 2061): hide it for a while."""
        try:
            self.store.set_key("retired:" + model_key, "1", RETIRED_MEMORY)
        except StoreError:
            pass

    def _retired(self, model: Model) -> bool:
        return self._key_retired(model.key)

    def _key_retired(self, key: str) -> bool:
        try:
            return self.store.get_key("retired:" + key) is not None
        except StoreError:
            return False

    def _live_keys(self, token: str | None) -> set[str] | None:
        """The keys the site lists (cached); None: unknown, use the catalogue."""
        if token is None:
            return self._live
        with self._lock:
            if time.monotonic() - self._read_at < self.ttl:
                return self._live
            self._read_at = time.monotonic()
        try:
            keys = set(model_keys(self.client.common_config(token)))
        except APIError as exc:
            log.info("live model list unavailable: %s", exc.message)
            return self._live
        self._live = keys or self._live  # an empty answer is no answer
        return self._live
