"""Reference images waiting in the store for their submit: the spec's
``references`` entries (size, hash, strength) and the bytes under a key with a
TTL, so whichever worker submits the job can upload them; read back only if
their hash still matches."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .references import Prepared
from .store import Store


def describe(
    prepared: Sequence[Prepared], default_strength: float
) -> list[dict[str, Any]]:
    """The spec's ``references`` entries (``stash`` adds where the bytes wait)."""
    return [
        {
            "mime": item.mime,
            "width": item.width,
            "height": item.height,
            "bytes": len(item.data),
            "sha256": hashlib.sha256(item.data).hexdigest(),
            "param": item.param,
            "strength": default_strength if item.strength is None else item.strength,
        }
        for item in prepared
    ]


def stash(
    store: Store,
    entries: Sequence[dict[str, Any]],
    prepared: Sequence[Prepared],
    ttl: float,
) -> None:
    """Keep the bytes in the store until the submit; name the key in each entry."""
    for entry, item in zip(entries, prepared, strict=True):
        entry["key"] = "ref:" + uuid.uuid4().hex
        store.set_key(entry["key"], base64.b64encode(item.data).decode("ascii"), ttl)


def load(store: Store, entry: Mapping[str, Any]) -> bytes | None:
    """The bytes of one stashed reference (None once expired or corrupted)."""
    text = store.get_key(entry["key"]) if entry.get("key") else None
    if text is None:
        return None
    data = base64.b64decode(text)
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        return None
    return data


def forget(store: Store, entries: Sequence[Mapping[str, Any]]) -> None:
    for entry in entries:
        if entry.get("key"):
            store.delete_key(entry["key"])
