"""Whether one response is a success, and what it says: images (``url`` or
``b64_json``), an SSE stream (events, first data, keep-alives), an async task.
Pure functions of the recorded response."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

HISTORY_IN_URL = re.compile(r"/img/(\d+)/")


def error_reason(res: dict[str, Any]) -> str:
    try:
        err = json.loads(res["body"]).get("error") or {}
        code = err.get("code") or err.get("type") or "?"
        res["message"] = str(err.get("message"))[:300]
    except (ValueError, AttributeError):
        code = "non-JSON body"
    return f"HTTP {res['status']} {code}"


def check_images(body: Any, b64: bool) -> tuple[str | None, str | None, int]:
    """Return (failure reason or None, history id in the URLs, image count)."""
    try:
        doc = json.loads(body) if isinstance(body, (bytes, str)) else body
    except ValueError:
        return "HTTP 200 with a non-JSON body", None, 0
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list) or not data:
        return "HTTP 200 without images", None, 0
    if b64:
        for item in data:
            head = base64.b64decode(str(item.get("b64_json", ""))[:12] + "==")
            if not head.startswith(b"\x89PNG"):
                return "HTTP 200 with b64_json that is not a PNG", None, 0
        return None, None, len(data)
    match = HISTORY_IN_URL.search(str(data[0].get("url", "")))
    return None, match.group(1) if match else None, len(data)


def sse_events(body: bytes) -> list[tuple[int, str]]:
    """``(offset of the event's end, text)`` for every SSE event and comment."""
    out, pos = [], 0
    while True:
        end = body.find(b"\n\n", pos)
        if end < 0:
            return out
        out.append((end + 2, body[pos:end].decode("utf-8", "replace")))
        pos = end + 2


def check_sse(body: bytes) -> tuple[str | None, str | None, int]:
    events = [
        text[5:].strip() for _, text in sse_events(body) if text.startswith("data:")
    ]
    if not events or events[-1] != "[DONE]":
        return "stream ended without data: [DONE]", None, 0
    history, text = None, ""
    for event in events[:-1]:
        try:
            doc = json.loads(event)
        except ValueError:
            return "stream with a non-JSON data event", None, 0
        if "error" in doc:
            err = doc["error"] or {}
            return f"stream error event {err.get('code') or err.get('type')}", None, 0
        for choice in doc.get("choices") or []:
            content = (choice.get("delta") or {}).get("content") or ""
            text += content
            match = HISTORY_IN_URL.search(content)
            if match and history is None:
                history = match.group(1)
    if history is None:
        return "stream without image URLs", None, 0
    return None, history, len(re.findall(r"!\[image_\d+\]", text))


def sse_timing(res: dict[str, Any]) -> dict[str, Any]:
    """Seconds from the request to the first ``data:`` event, and the gaps
    between consecutive events (keep-alive comments included)."""
    arrivals = res.get("arrivals") or []
    times = []
    for end, text in sse_events(res["body"]):
        t = next((t for t, n in arrivals if n >= end), res["t_end"])
        times.append((t - res["t_start"], text.startswith(":")))
    first = next((t for t, comment in times if not comment), None)
    keepalives = [t for t, comment in times if comment]
    gaps = [b - a for a, b in zip(keepalives, keepalives[1:], strict=False)]
    return {
        "first_data_s": first,
        "keepalives": len(keepalives),
        "keepalive_gaps": gaps,
        "first_keepalive_s": keepalives[0] if keepalives else None,
    }


def check_task(doc: Any) -> tuple[str | None, str | None, int]:
    """An async task object, read until it ended."""
    if not isinstance(doc, dict) or doc.get("object") != "task":
        return "task: not a task object", None, 0
    status = doc.get("status")
    if status == "completed":
        result = doc.get("result") or {}
        if "choices" in result:  # a chat task: Markdown images
            content = str(
                ((result["choices"] or [{}])[0].get("message") or {}).get("content", "")
            )
            match = HISTORY_IN_URL.search(content)
            n = len(re.findall(r"!\[image_\d+\]", content))
            return (
                (None, match.group(1), n) if match else ("task without images", None, 0)
            )
        return check_images(result, False)
    if status == "failed":
        err = doc.get("error") or {}
        return f"task failed {err.get('code') or err.get('type')}", None, 0
    return f"lost: task still {status}", None, 0


def classify(item: dict[str, Any]) -> tuple[str | None, str | None, int]:
    """(reason or None, history id, images) of one request's outcome."""
    res, kind = item["res"], item["kind"]
    if res is None:
        return "no result (harness timeout)", None, 0
    if kind == "async":
        if item.get("lost"):
            return item["lost"], None, 0
        if item.get("task") is None:
            return (res["error"] or error_reason(res)), None, 0
        return check_task(item["task"])
    if res["error"]:
        return res["error"], None, 0
    if res["status"] != 200:
        return error_reason(res), None, 0
    if kind == "sse":
        return check_sse(res["body"])
    return check_images(res["body"], kind == "b64")
