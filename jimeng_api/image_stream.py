"""Image streaming: ``stream: true`` on ``/v1/images/generations`` and
``/v1/images/edits``, as the OpenAI SDKs read it (protocol-2026-12 §6).

Jimeng renders no intermediate steps; it delivers the finished images one by
one. The mapping:

* each image, **as soon as Jimeng has it**, is one ``image_generation.completed``
  (edits: ``image_edit.completed``) event with the image as ``b64_json`` (in
  ``output_format`` when one was asked for), so a client that keeps the
  completed events gets every image, and gets it early;
* with ``partial_images`` ≥ 1, each completed event is preceded by one
  ``…partial_image`` event: a small preview (longer side 256 px) of the same
  image, ``partial_image_index`` = the image's index;
* both carry ``image_index`` (the image's position, as Volcengine Ark's events
  do), ``size``, ``quality``, ``background`` (always ``opaque``),
  ``output_format`` and ``created_at``; a completed event carries ``usage`` (an
  estimate: the prompt's tokens on the first event, zeros after it);
* ``: keep-alive`` comments while Jimeng works, then ``data: [DONE]``;
* a failure after the stream began is a ``data: {"error": …}`` event (the SDK
  raises it), then ``[DONE]``; fewer images than asked for end with a
  ``: partial k/n`` comment.

Events carry base64 only, one image at a time: memory stays at one image,
whatever ``n`` is.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import metrics
from .errors import APIError
from .results import encode_as, preview
from .sse import DONE, KEEPALIVE, keepalive_due, sse_data

log = logging.getLogger(__name__)

Fetch = Callable[[str], bytes]
ErrorOf = Callable[[dict[str, Any]], APIError]


def usage(prompt: str, first: bool) -> dict[str, Any]:
    """OpenAI's image ``usage`` object (an estimate: about 4 characters a token)."""
    text = math.ceil(len(prompt) / 4) if first else 0
    return {
        "input_tokens": text,
        "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
        "output_tokens": 0,
        "total_tokens": text,
    }


class EventWriter:
    """Builds the events of one stream (``image_generation`` or ``image_edit``)."""

    def __init__(self, prefix: str, spec: dict[str, Any]) -> None:
        self.prefix = prefix
        self.spec = spec
        self.prompt = spec.get("draft", {}).get("prompt", "")

    def _event(self, kind: str, image: bytes, fmt: str, index: int) -> dict[str, Any]:
        return {
            "type": f"{self.prefix}.{kind}",
            "b64_json": base64.b64encode(image).decode("ascii"),
            "image_index": index,
            "size": self.spec.get("size") or "auto",
            "quality": self.spec.get("quality") or "auto",
            "background": "opaque",
            "output_format": fmt,
            "created_at": int(time.time()),
        }

    def partial(self, image: bytes, fmt: str, index: int) -> str:
        event = self._event("partial_image", image, fmt, index)
        event["partial_image_index"] = index
        return sse_data(event)

    def completed(self, image: bytes, fmt: str, index: int) -> str:
        event = self._event("completed", image, fmt, index)
        event["usage"] = usage(self.prompt, index == 0)
        return sse_data(event)


def image_events(
    job: dict[str, Any],
    updates: Iterator[dict[str, Any] | None],
    *,
    fetch: Fetch,
    error_of: ErrorOf,
    prefix: str,
    partial_images: int,
    keepalive: float,
) -> Iterator[str]:
    """Yield the SSE body of an image stream; see the module docstring.

    *updates* is ``Jobs.wait``'s iterator (the job at each change, None on each
    tick); *fetch* downloads one image; *error_of* turns a failed job into its
    error. Closing this generator (the client left) closes *updates*: the job
    goes on and stays collectable as a task.
    """
    writer = EventWriter(prefix, job["spec"])
    spec = job["spec"]
    with metrics.tracking(metrics.SSE_OPEN):
        sent, last = 0, time.monotonic()
        try:
            for latest in updates:
                now = time.monotonic()
                if latest is None:
                    if keepalive_due(now, last, keepalive):
                        last = now
                        yield KEEPALIVE
                    continue
                job = latest
                urls = job.get("urls") or []
                while sent < len(urls):
                    raw = fetch(urls[sent])
                    image, fmt = encode_as(
                        raw, spec.get("output_format"), spec.get("output_compression")
                    )
                    del raw
                    if partial_images:
                        yield writer.partial(preview(image, fmt), fmt, sent)
                    yield writer.completed(image, fmt, sent)
                    del image
                    sent += 1
                    last = time.monotonic()
            if job["status"] != "completed":
                raise error_of(job)
            if job.get("partial"):
                yield f": partial {job['partial']}\n\n"
        except APIError as exc:
            yield sse_data(exc.to_dict())
        except Exception:  # no error handler runs mid-stream
            log.exception("image stream failed")
            yield sse_data(APIError("The stream was interrupted.").to_dict())
        finally:
            close = getattr(updates, "close", None)
            if close is not None:
                close()
        yield DONE
