"""``POST /v1/chat/completions``: image generation presented as a chat model."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app
from flask.typing import ResponseReturnValue

from ..auth import caller
from ..catalog import get_model
from ..errors import InvalidRequestError
from ..references import Source
from ..results import markdown_image, partial_note, usage
from ..schemas import chat_completion_schema, load_json
from ..sizes import parse_model_suffix, size_from_suffix, size_table
from ..specs import clean_prompt
from ..sse import SSE_HEADERS, ChunkWriter, stream_completion
from ..upstream.video import is_video_model
from .edits import build_spec
from .videos import chat_video
from .waiting import job_error, respond, start, wait, wants_async

bp = Blueprint("chat", __name__, url_prefix="/v1/chat")

PROGRESS = "🎨 图像生成中，请稍候...\n\n"


@bp.post("/completions")
def create_chat_completion() -> ResponseReturnValue:
    """Generate images from the last user message; stream them when asked to."""
    who = caller()
    params = load_json(chat_completion_schema)
    config = current_app.config
    raw_model = params["model"] or config["DEFAULT_MODEL"]
    name, suffix = parse_model_suffix(raw_model)
    if is_video_model(name):  # jimeng-video-*: the answer links the video
        prompt = clean_prompt(
            last_user_text(params["messages"]), config["MAX_PROMPT_LENGTH"], "messages"
        )
        return chat_video(who, params, raw_model, name, prompt)
    size = size_from_suffix(
        get_model(name), suffix, size_table(config["JIMENG_SIZE_TABLE"])
    )
    prompt = clean_prompt(
        last_user_text(params["messages"]), config["MAX_PROMPT_LENGTH"], "messages"
    )
    # image parts of that message make it image to image (never dropped)
    spec = build_spec(
        params,
        last_user_images(params["messages"]),
        prompt=prompt,
        prompt_param="messages",
        model_name=name,
        size=size,
        kind="chat",
    )
    spec.update(
        completion_id=f"chatcmpl-{uuid.uuid4().hex}", raw_model=raw_model, prompt=prompt
    )
    callback = params.get("callback_url")
    if not params["stream"] or wants_async():
        return respond(who, "chat", spec, callback)
    # Everything that can fail with a proper status happens before streaming.
    job = start(who, "chat", spec, callback)
    if job["status"] == "failed":
        raise job_error(job)
    include_usage = bool((params["stream_options"] or {}).get("include_usage"))
    show = params.get("progress")
    progress = (
        PROGRESS if (config["CHAT_PROGRESS_TEXT"] if show is None else show) else ""
    )
    writer = ChunkWriter(job["spec"]["completion_id"], raw_model, int(time.time()))
    tick = config["SSE_KEEPALIVE_INTERVAL"]
    body = stream_completion(
        writer,
        progress,
        image_deltas(job, wait(job, tick)),
        keepalive=tick,
        usage=(lambda text: usage(prompt, text.removeprefix(progress)))
        if include_usage
        else None,
    )
    headers = {**SSE_HEADERS, "X-Task-Id": job["id"]}
    return Response(body, mimetype="text/event-stream", headers=headers)


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


def last_user_images(messages: list[dict[str, Any]]) -> list[Source]:
    """The image parts of the last user message, in order, as references:
    ``image_url`` (``{"url": …}`` or a string: an http(s) URL or a data: URI)
    and the Responses API's ``input_image``."""
    for m_index in range(len(messages) - 1, -1, -1):
        message = messages[m_index]
        if message["role"] != "user":
            continue
        content = message["content"]
        if not isinstance(content, list):
            return []
        sources = []
        for p_index, part in enumerate(content):
            kind = part["type"]
            if kind not in ("image_url", "input_image"):
                continue
            param = f"messages[{m_index}].content[{p_index}]"
            value = part.get("image_url")
            if isinstance(value, dict):
                value = value.get("url")
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequestError(
                    f"'{param}' is an image part without a URL: send "
                    '{"type": "image_url", "image_url": {"url": "https://…" or '
                    '"data:image/png;base64,…"}}.',
                    param=param,
                )
            sources.append(Source(value, param))
        return sources
    return []


def image_deltas(
    job: dict[str, Any], updates: Iterator[dict[str, Any] | None]
) -> Iterator[str | None]:
    """Yield a Markdown line for each image as it appears, None while waiting;
    a note at the end when fewer images came than were asked for."""
    sent = 0
    for latest in updates:
        if latest is None:
            yield None
            continue
        job = latest
        urls = job.get("urls") or []
        if len(urls) <= sent:
            yield None  # a change without a new image: still, keep the cadence
        for index in range(sent, len(urls)):
            yield markdown_image(index, urls[index])
        sent = len(urls)
    if job["status"] != "completed":
        raise job_error(job)
    if job.get("partial"):
        yield partial_note(job["partial"])
