"""Server-sent events in the shape OpenAI clients parse (``chat.completion.chunk``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import metrics
from .errors import APIError

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = ": keep-alive\n\n"  # a comment line; SSE clients ignore it
#: a keep-alive is due this close to its interval: the waiter's ticks and the
#: writer's clock are read a few microseconds apart
KEEPALIVE_SLACK = 0.02


def keepalive_due(now: float, last_write: float, interval: float) -> bool:
    """Whether nothing was written for (about) *interval* seconds."""
    return now - last_write >= interval - KEEPALIVE_SLACK


DONE = "data: [DONE]\n\n"


def sse_data(payload: dict[str, Any]) -> str:
    """Encode one ``data:`` event; compact JSON never contains a newline."""
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


class ChunkWriter:
    """Builds the chunks of one completion: same id, index 0, role only first."""

    def __init__(self, completion_id: str, model: str, created: int) -> None:
        self.head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }

    def delta(self, content: str, *, first: bool = False) -> str:
        delta = (
            {"role": "assistant", "content": content} if first else {"content": content}
        )
        return self._choice(delta, None)

    def finish(self) -> str:
        return self._choice({}, "stop")

    def usage(self, usage: dict[str, int]) -> str:
        return sse_data({**self.head, "choices": [], "usage": usage})

    def _choice(self, delta: dict[str, str], finish_reason: str | None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return sse_data({**self.head, "choices": [choice]})


def stream_completion(
    writer: ChunkWriter,
    first: str,
    deltas: Iterable[str | None],
    *,
    keepalive: float,
    usage: Callable[[str], dict[str, int]] | None = None,
) -> Iterator[str]:
    """Yield the SSE body: *first*, each delta, one finish chunk, then ``[DONE]``.

    ``None`` in *deltas* means "still working": a keep-alive comment goes out when
    nothing was written for *keepalive* seconds. The status line is already sent,
    so a failure becomes an ``error`` event (openai-python raises it as APIError).
    Closing this generator (the client left) closes *deltas*, which stops polling.
    *usage*, if given, turns the streamed text into a usage object.
    """
    with metrics.tracking(metrics.SSE_OPEN):
        last, text = time.monotonic(), [first]
        try:
            yield writer.delta(first, first=True)
            for delta in deltas:
                now = time.monotonic()
                if delta is not None:
                    last = now
                    text.append(delta)
                    yield writer.delta(delta)
                elif keepalive_due(now, last, keepalive):
                    last = now
                    yield KEEPALIVE
            yield writer.finish()
            if usage is not None:
                yield writer.usage(usage("".join(text)))
        except APIError as exc:
            yield sse_data(exc.to_dict())
        except Exception:  # the one broad catch: no error handler runs mid-stream
            log.exception("chat stream failed")
            yield sse_data(APIError("The stream was interrupted.").to_dict())
        finally:
            close = getattr(deltas, "close", None)
            if close is not None:
                close()
        yield DONE
