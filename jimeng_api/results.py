"""What a finished job returns: exactly the body its synchronous endpoint sends.

Built once, by the worker that finishes the job, and kept with the job: a
``b64_json`` result holds the image bytes fetched then, so an image that was
paid for survives the expiry of Jimeng's signed URLs.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

FetchAll = Callable[[list[str]], list[bytes]]


def markdown_image(index: int, url: str) -> str:
    return f"![image_{index}]({url})\n"


def markdown_images(urls: list[str]) -> str:
    return "".join(markdown_image(i, url) for i, url in enumerate(urls))


def usage(prompt: str, content: str) -> dict[str, int]:
    """Estimate tokens (about 4 characters each); Jimeng bills in credits."""
    prompt_tokens = math.ceil(len(prompt) / 4)
    completion_tokens = math.ceil(len(content) / 4)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(spec: dict[str, Any], content: str, created: int) -> dict[str, Any]:
    """The ``chat.completion`` body of a chat job."""
    message = {"role": "assistant", "content": content}
    return {
        "id": spec["completion_id"],
        "object": "chat.completion",
        "created": created,
        "model": spec["raw_model"],
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": usage(spec["prompt"], content),
    }


class Renderer:
    """Turns a finished job's image URLs into its endpoint's response body."""

    def __init__(self, fetch_all: FetchAll) -> None:
        self.fetch_all = fetch_all

    def render(self, job: dict[str, Any], urls: list[str]) -> dict[str, Any]:
        spec, created = job["spec"], int(job["created_at"])
        if job["kind"] == "chat":
            return completion(spec, markdown_images(urls), created)
        if spec.get("response_format") == "b64_json":
            images = self.fetch_all(urls)
            data = [{"b64_json": base64.b64encode(b).decode()} for b in images]
        else:
            data = [{"url": url} for url in urls]
        return {"created": created, "data": data}
