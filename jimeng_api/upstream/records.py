"""What a history record says: status, images so far, queue position, failure.

One place interprets records (protocol doc §3.4, protocol-2026-12 §3–§4): the
statuses, the ``fail_code`` table and what a finished record without images means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    APIError,
    ContentFilteredError,
    GenerationFailedError,
    InsufficientQuotaError,
)
from .video import model_by_key
from .video_items import is_video_item, item_id, video_url

PROCESSING = 20
POST_PROCESSING = frozenset({42, 45})  # images appear one by one
DONE = frozenset({50, 10})
FAILED = frozenset({30, 40, 100})

#: fail_code → what it means (protocol-2026-12 §3 corrects 1017 and 2039)
CONTENT_FAIL_CODES = frozenset(
    {"2038", "2041", "2042", "2043", "2003", "2004", "2005", "2047", "2048", "2050"}
)
CREDIT_FAIL_CODES = frozenset({"2039"})
OVERLOAD_FAIL_CODES = frozenset({"1017"})


@dataclass(frozen=True)
class Queue:
    """``queue_info`` of a queued record."""

    position: int
    length: int | None


@dataclass(frozen=True)
class Record:
    """One history record, reduced to what the job flow needs."""

    status: int
    fail_code: str = ""
    urls: list[str] = field(default_factory=list)
    total: int | None = None
    queue: Queue | None = None
    created: float | None = None  # Unix seconds, the record's own timestamp
    has_items: bool = True  # False: the record came without ``item_list``
    video: bool = False  # its items are videos (``urls`` are the MP4s)
    item_ids: list[str] = field(default_factory=list)  # aligned with ``urls``

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    @property
    def stage(self) -> str:
        """``queued``, ``processing``, ``finishing`` (images appearing) or final."""
        if self.done or self.failed:
            return "final"
        if self.queue is not None and self.queue.position > 0:
            return "queued"
        if self.status in POST_PROCESSING or self.urls:
            return "finishing"
        return "processing"

    def error(self, history_id: str) -> APIError:
        """Return the error a failed record stands for."""
        code = self.fail_code
        where = f"record {history_id}"
        if code in CONTENT_FAIL_CODES:
            return ContentFilteredError(
                f"The prompt was blocked by Jimeng's content filter "
                f"(fail_code {code}, {where})."
            )
        if code in CREDIT_FAIL_CODES:
            return InsufficientQuotaError(
                f"Jimeng stopped the generation for lack of credits "
                f"(fail_code {code}, {where})."
            )
        if code in OVERLOAD_FAIL_CODES:
            return GenerationFailedError(
                f"Jimeng was overloaded and dropped the generation; try again later "
                f"(fail_code {code}, {where}).",
                code="upstream_overloaded",
            )
        detail = f"fail_code {code}" if code else "no fail code"
        what = "video" if self.video else "image"
        return GenerationFailedError(
            f"Jimeng could not generate the {what} (status {self.status}, "
            f"{detail}, {where})."
        )


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _image_url(item: Mapping[str, Any]) -> str | None:
    image = item.get("image") or {}
    large = image.get("large_images") or [{}]
    url = (large[0] or {}).get("image_url") or (item.get("common_attr") or {}).get(
        "cover_url"
    )
    return url if isinstance(url, str) and url else None


def _queue(raw: Any) -> Queue | None:
    if not isinstance(raw, Mapping):
        return None
    length = raw.get("queue_length")
    return Queue(
        position=max(_int(raw.get("queue_idx"), 0), 0),
        length=length if isinstance(length, int) and length >= 0 else None,
    )


def _item_url(item: Mapping[str, Any]) -> str | None:
    """A video item's MP4 (never its cover), else an image item's image."""
    return video_url(item) if is_video_item(item) else _image_url(item)


def _video_model(raw: Mapping[str, Any]) -> bool:
    info = raw.get("model_info")
    key = info.get("model_req_key") if isinstance(info, Mapping) else None
    return isinstance(key, str) and model_by_key(key) is not None


def parse_record(raw: Mapping[str, Any]) -> Record:
    """Extract what matters from a raw history record (any field may be off)."""
    items = raw.get("item_list")
    found = [
        (url, item)
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, Mapping) and (url := _item_url(item))
    ]
    urls = [url for url, _ in found]
    total = raw.get("total_image_count")
    created = raw.get("created_time")
    return Record(
        status=_int(raw.get("status"), PROCESSING),
        fail_code=str(raw.get("fail_code") or ""),
        urls=urls,
        total=total if isinstance(total, int) and total > 0 else None,
        queue=_queue(raw.get("queue_info")),
        created=float(created) if isinstance(created, int | float) else None,
        has_items=isinstance(items, list),
        video=any(is_video_item(item) for _, item in found) or _video_model(raw),
        item_ids=[item_id(item) or "" for _, item in found],
    )


def history_id_of(raw: Mapping[str, Any]) -> str | None:
    """Return the record id of a record found by its ``submit_id``."""
    history_id = raw.get("history_record_id") or (raw.get("task") or {}).get(
        "history_id"
    )
    return str(history_id) if history_id else None
