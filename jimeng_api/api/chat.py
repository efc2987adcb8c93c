"""``POST /v1/chat/completions``: image generation presented as a chat model."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app
from flask.typing import ResponseReturnValue

from ..auth import session_ids
from ..catalog import get_model, parse_model_suffix, size_from_suffix
from ..errors import InvalidRequestError
from ..extensions import get_generator
from ..generation import Generator, Job
from ..images import build_request, clean_prompt
from ..schemas import chat_completion_schema, load_json
from ..sse import SSE_HEADERS, ChunkWriter, stream_completion

bp = Blueprint("chat", __name__, url_prefix="/v1/chat")

PROGRESS = "🎨 图像生成中，请稍候...\n\n"


@bp.post("/completions")
def create_chat_completion() -> ResponseReturnValue:
    """Generate images from the last user message; stream them when asked to."""
    tokens = session_ids()
    params = load_json(chat_completion_schema)
    config = current_app.config
    raw_model = params["model"] or config["DEFAULT_MODEL"]
    name, suffix = parse_model_suffix(raw_model)
    size = size_from_suffix(get_model(name), suffix)
    prompt = clean_prompt(
        last_user_text(params["messages"]), config["MAX_PROMPT_LENGTH"], "messages"
    )
    job_spec = build_request(
        config,
        model_name=name,
        prompt=prompt,
        size=size,
        n=params["n"],
        negative_prompt=params["negative_prompt"],
    )
    generator = get_generator()
    # Everything that can fail with a proper status happens before streaming.
    job = generator.start(tokens, job_spec.draft, job_spec.model.id)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    if not params["stream"]:
        for _ in generator.progress(job):
            pass
        content = markdown_images(job.urls)
        return completion(completion_id, raw_model, content, usage(prompt, content))

    include_usage = bool((params["stream_options"] or {}).get("include_usage"))
    writer = ChunkWriter(completion_id, raw_model, int(time.time()))
    body = stream_completion(
        writer,
        PROGRESS,
        image_deltas(generator, job, config["SSE_KEEPALIVE_INTERVAL"]),
        keepalive=config["SSE_KEEPALIVE_INTERVAL"],
        usage=(lambda text: usage(prompt, text)) if include_usage else None,
    )
    return Response(body, mimetype="text/event-stream", headers=SSE_HEADERS)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Return the text of the last user message (text parts joined)."""
    for message in reversed(messages):
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, list):
            texts = [p.get("text") for p in content if p["type"] == "text"]
            content = "\n".join(t for t in texts if isinstance(t, str))
        return content or ""
    raise InvalidRequestError("No message with role 'user'.", param="messages")


def image_deltas(generator: Generator, job: Job, tick: float) -> Iterator[str | None]:
    """Yield a Markdown line for each image as it appears, None while waiting."""
    sent = 0
    for urls in generator.progress(job, tick=tick):
        if urls is None:
            yield None
            continue
        for index in range(sent, len(urls)):
            yield markdown_image(index, urls[index])
        sent = len(urls)


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


def completion(
    completion_id: str, model: str, content: str, usage: dict[str, int]
) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": usage,
    }
