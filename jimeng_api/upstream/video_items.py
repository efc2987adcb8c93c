"""Where a finished video is: the video of a record's item (protocol doc §6.3),
and the download (HQ) file ``get_local_item_list`` offers (§5.7)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from .drafts import compact


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith("http") else None


def is_video_item(item: Mapping[str, Any]) -> bool:
    return isinstance(item.get("video"), Mapping) or isinstance(
        _get(item, "common_attr", "transcoded_video"), Mapping
    )


def video_url(item: Mapping[str, Any]) -> str | None:
    """The video of a record's item, in the lookup order of §6.3."""
    for path in (
        ("common_attr", "transcoded_video", "origin", "video_url"),  # Asia
        ("video", "transcoded_video", "origin", "video_url"),  # CN
        ("video", "play_url"),
        ("video", "download_url"),
        ("video", "url"),
    ):
        if url := _url(_get(item, *path)):
            return url
    return None


def item_id(item: Mapping[str, Any]) -> str | None:
    for value in (
        item.get("item_id"),
        item.get("id"),
        item.get("local_item_id"),
        _get(item, "common_attr", "id"),
    ):
        if isinstance(value, str | int) and not isinstance(value, bool) and value:
            return str(value)
    return None


def local_items_body(item_ids: list[str]) -> bytes:
    """``get_local_item_list`` for the download of these items (§5.7)."""
    return compact(
        {
            "item_id_list": list(item_ids),
            "pack_item_opt": {"scene": 1, "need_data_integrity": True},
            "is_for_video_download": True,
        }
    ).encode()


def _main_url(video_model: Any) -> str | None:
    """The best ``video_list.*.main_url`` (base64 of the URL) of a video_model,
    which comes as a JSON string or an object."""
    if isinstance(video_model, str):
        try:
            video_model = json.loads(video_model)
        except ValueError:
            return None
    entries = _get(video_model, "video_list")
    if not isinstance(entries, Mapping):
        return None
    ranked = sorted(
        (e for e in entries.values() if isinstance(e, Mapping)),
        key=lambda e: -_number(e.get("bitrate") or e.get("vwidth")),
    )
    for entry in ranked:
        raw = entry.get("main_url")
        if not isinstance(raw, str):
            continue
        try:
            decoded = base64.b64decode(raw, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if url := _url(decoded):
            return url
    return None


def hq_urls(data: Any) -> dict[str, str]:
    """``{item_id: url}`` of the download files a ``get_local_item_list``
    answer offers (``video_model`` first, then the transcoded origin)."""
    items = None
    if isinstance(data, Mapping):
        items = data.get("item_list") or data.get("local_item_list")
    found: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        key = item_id(item)
        url = _main_url(_get(item, "video", "video_model")) or video_url(item)
        if key and url:
            found[key] = url
    return found
