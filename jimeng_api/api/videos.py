"""``/v1/videos``: video generation, OpenAI's Videos API on durable jobs.

``POST /v1/videos`` (JSON or multipart) answers at once with the video job;
``GET /v1/videos/{id}`` is what ``videos.create_and_poll`` polls;
``GET /v1/videos/{id}/content`` streams the MP4 (``Range`` supported), fetched
once from Jimeng's CDN through the safe fetcher and kept beside the store;
``GET /v1/videos`` lists the caller's own; ``DELETE`` forgets one. Another
caller's video is as unknown as a missing one (404).

``POST /v1/videos/generations`` is the forks' synchronous shape: it waits,
sending a blank line every ``SSE_KEEPALIVE_INTERVAL`` seconds (JSON allows
leading whitespace) so proxies keep the connection, then ``{"created",
"data": [{"url", "revised_prompt"}]}``; ``Prefer: respond-async`` answers 202
with the task. An error after the first keep-alive arrives as an OpenAI error
body (the status line was sent already); its task stays collectable.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, request, send_file
from flask.typing import ResponseReturnValue
from marshmallow import Schema

from .. import reference_stash, references
from ..auth import caller
from ..errors import APIError, InvalidRequestError, NotFoundError
from ..extensions import get_fetcher, get_generations, get_jobs, get_store
from ..jobs import Caller
from ..results import usage
from ..schemas import load_json
from ..schemas_videos import (
    video_create_form_schema,
    video_create_schema,
    video_generation_form_schema,
    video_generation_schema,
)
from ..specs import clean_prompt
from ..sse import SSE_HEADERS, ChunkWriter, keepalive_due, stream_completion
from ..video_files import forget_video_file, video_file
from ..videos import POLL_AFTER_MS, video_object, video_spec
from .waiting import (
    accepted,
    idempotency,
    job_error,
    respond,
    wait,
    wants_async,
)

bp = Blueprint("videos", __name__, url_prefix="/v1/videos")

MAX_LIMIT = 100
MAX_SCAN = 1000  # jobs of the caller looked at for one list
KEEPALIVE = b"\n"


# --- OpenAI's Videos API ------------------------------------------------------


@bp.post("")
def create_video() -> ResponseReturnValue:
    """Start a video job; poll ``GET /v1/videos/{id}``, then download its content."""
    who = caller()
    key = idempotency()
    params, files = _read(video_create_schema, video_create_form_schema)
    frames = _frame_sources(params, files)
    spec = _spec(params, frames, seconds=params["seconds"])
    job = get_generations().start(
        who, "video", spec, idempotency=key, callback_url=params.get("callback_url")
    )
    if job["status"] == "failed":
        raise job_error(job)
    return _object(job), 200, _poll_headers(job)


@bp.get("/<video_id>")
def retrieve_video(video_id: str) -> ResponseReturnValue:
    """Return one video job: its status, progress and, once done, its size."""
    job = _video_job(caller(), video_id)
    return _object(job), 200, _poll_headers(job)


@bp.get("")
def list_videos() -> ResponseReturnValue:
    """The caller's video jobs, newest first (``order=asc``: oldest first)."""
    who = caller()
    limit = _limit(request.args.get("limit", "20"))
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError("order must be 'asc' or 'desc'.", param="order")
    after = request.args.get("after") or None
    videos = _all_videos(who)
    if order == "asc":
        videos.reverse()
    ids = [job["id"] for job in videos]
    if after is not None:
        videos = videos[ids.index(after) + 1 :] if after in ids else []
    page = [_object(job) for job in videos[:limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(videos) > limit,
    }


@bp.delete("/<video_id>")
def delete_video(video_id: str) -> ResponseReturnValue:
    """Forget a video job and its file (Jimeng is not asked to cancel it)."""
    who = caller()
    _video_job(who, video_id)
    get_jobs().delete_for(who, video_id)
    forget_video_file(current_app.config, video_id)
    return {"id": video_id, "object": "video.deleted", "deleted": True}


@bp.get("/<video_id>/content")
def download_video(video_id: str) -> ResponseReturnValue:
    """Stream the finished MP4 (``Range`` requests get 206 and a part)."""
    job = _video_job(caller(), video_id)
    variant = request.args.get("variant", "video")
    if variant != "video":
        raise InvalidRequestError(
            f"variant '{variant[:20]}' is not available: Jimeng makes the MP4 only "
            "(variant=video).",
            param="variant",
        )
    if job["status"] != "completed" or not job.get("urls"):
        raise InvalidRequestError(
            f"The video is not ready (status {job['status']}); poll "
            f"GET /v1/videos/{video_id} until it is completed.",
            code="video_not_ready",
        )
    path = video_file(
        job,
        current_app.config,
        get_fetcher(),
        get_generations().download_proxy(job),  # the account's proxy, if any
    )
    response = send_file(
        path,
        mimetype="video/mp4",
        conditional=True,
        download_name=f"{video_id}.mp4",
        max_age=0,
    )
    response.headers["X-Task-Id"] = video_id
    return response


# --- the forks' synchronous endpoint ------------------------------------------


@bp.post("/generations")
def create_video_generation() -> ResponseReturnValue:
    """Generate a video and answer with its URL when it is done (the forks' shape).

    Blank lines keep the connection alive while it waits; ``Prefer:
    respond-async`` answers 202 with the task instead."""
    who = caller()
    key = idempotency()
    params, files = _read(video_generation_schema, video_generation_form_schema)
    paths = params["file_paths"] or params["filePaths"] or []
    frames = _fork_frames(paths, files)
    name = "duration" if params["duration"] is not None else "seconds"
    spec = _spec(params, frames, seconds=params[name], seconds_param=name)
    job = get_generations().start(
        who, "video", spec, idempotency=key, callback_url=params.get("callback_url")
    )
    if job["status"] == "failed":
        raise job_error(job)
    if wants_async():
        return accepted(job)
    tick = current_app.config["SSE_KEEPALIVE_INTERVAL"]
    body = _waiting_body(job, wait(job, tick), tick)
    headers = {
        "X-Task-Id": job["id"],
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    return Response(body, mimetype="application/json", headers=headers)


def _waiting_body(
    job: dict[str, Any], updates: Iterator[dict[str, Any] | None], tick: float
) -> Iterator[bytes]:
    last = time.monotonic()
    try:
        for latest in updates:
            if latest is not None:
                job = latest
            if keepalive_due(time.monotonic(), last, tick):
                last = time.monotonic()
                yield KEEPALIVE
        if job["status"] == "completed":
            yield _json(job["result"])
        else:
            yield _json(job_error(job).to_dict())
    except APIError as exc:  # the wait ran out: the task goes on
        yield _json(exc.to_dict())
    finally:
        close = getattr(updates, "close", None)
        if close is not None:
            close()


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# --- chat: jimeng-video-* ------------------------------------------------------------


PROGRESS = {
    "queued": "⏳ 排队中",
    "processing": "🎬 视频生成中",
    "finishing": "🎬 视频生成中",
}


def chat_video(
    who: Caller, params: dict[str, Any], raw_model: str, name: str, prompt: str
) -> ResponseReturnValue:
    """``/v1/chat/completions`` with a ``jimeng-video-*`` model: the answer is a
    Markdown link to the video; a stream shows the progress while it waits."""
    config = current_app.config
    spec = video_spec(config, model_name=name, prompt=prompt)
    spec.update(
        completion_id=f"chatcmpl-{uuid.uuid4().hex}",
        raw_model=raw_model,
        video=True,
    )
    callback = params.get("callback_url")
    if not params["stream"] or wants_async():
        return respond(who, "chat", spec, callback)
    job = get_generations().start(who, "chat", spec, callback_url=callback)
    if job["status"] == "failed":
        raise job_error(job)
    include_usage = bool((params["stream_options"] or {}).get("include_usage"))
    writer = ChunkWriter(spec["completion_id"], raw_model, int(time.time()))
    tick = config["SSE_KEEPALIVE_INTERVAL"]
    body = stream_completion(
        writer,
        "",
        video_deltas(job, wait(job, tick)),
        keepalive=tick,
        usage=(lambda text: usage(prompt, text)) if include_usage else None,
    )
    headers = {**SSE_HEADERS, "X-Task-Id": job["id"]}
    return Response(body, mimetype="text/event-stream", headers=headers)


def video_deltas(
    job: dict[str, Any], updates: Iterator[dict[str, Any] | None]
) -> Iterator[str | None]:
    """A progress line whenever the stage (or queue position) changes, None
    while waiting, then the link to the video."""
    shown = None
    for latest in updates:
        if latest is None:
            yield None
            continue
        job = latest
        progress = job.get("progress") or {}
        stage = progress.get("stage")
        position = progress.get("queue_position")
        if stage in PROGRESS and (stage, position) != shown:
            shown = (stage, position)
            where = f"（第 {position} 位）" if stage == "queued" and position else ""
            yield f"{PROGRESS[stage]}{where}…\n\n"
    if job["status"] != "completed":
        raise job_error(job)
    yield "".join(f"[video_{i}]({url})\n" for i, url in enumerate(job["urls"]))


# --- helpers ------------------------------------------------------------------


def _read(json_schema: Schema, form_schema: Schema) -> tuple[dict[str, Any], dict]:
    """The parameters (JSON, or multipart text fields) and the uploaded files."""
    if request.mimetype != "multipart/form-data":
        return load_json(json_schema), {}
    form: dict[str, Any] = {}
    for name, value in request.form.items():
        head, sep, rest = name.partition("[")
        if sep and rest.endswith("]"):  # input_reference[image_url] (the SDK)
            nested = form.setdefault(head, {})
            if isinstance(nested, dict):
                nested[rest[:-1]] = value
        elif name in ("file_paths", "filePaths"):
            form[name] = request.form.getlist(name)
        else:
            form[name] = value
    files = {name: request.files.getlist(name) for name in request.files}
    return load_json(form_schema, form), files


def _frame_sources(
    params: dict[str, Any], files: dict[str, list]
) -> list[references.Source]:
    """``input_reference`` (the first frame) and ``last_frame``: files or values."""
    sources = []
    for name in ("input_reference", "last_frame"):
        uploads = [f for f in files.get(name, []) if f.filename or f.mimetype]
        if len(uploads) > 1:
            raise InvalidRequestError(f"Send one '{name}', not several.", param=name)
        if uploads:
            sources.append(references.Source(uploads[0].read(), name))
        elif params.get(name) is not None:
            sources += references.sources_from_json(params[name], name)
    if len(sources) == 1 and sources[0].param == "last_frame":
        raise InvalidRequestError(
            "'last_frame' needs 'input_reference' (the first frame) too.",
            param="last_frame",
        )
    return sources


def _fork_frames(paths: list[str], files: dict[str, list]) -> list[references.Source]:
    """The forks' frames: ``image_file_1``/``image_file_2`` files, else URLs."""
    sources = []
    for index, name in enumerate(("image_file_1", "image_file_2")):
        uploads = files.get(name) or []
        if uploads:
            sources.append(references.Source(uploads[0].read(), name))
        elif index < len(paths):
            sources.append(references.Source(paths[index], f"file_paths[{index}]"))
    return sources


def _spec(
    params: dict[str, Any],
    frames: list[references.Source],
    *,
    seconds: Any,
    seconds_param: str = "seconds",
) -> dict[str, Any]:
    """Check everything and build the spec; frames are prepared and stashed for
    the submit, which uploads them with the account that takes the job."""
    config = current_app.config
    prompt = clean_prompt(params["prompt"], config["MAX_PROMPT_LENGTH"])
    spec = video_spec(
        config,
        model_name=params["model"],
        prompt=prompt,
        seconds=seconds,
        size=params["size"],
        ratio=params["ratio"],
        resolution=params["resolution"],
        seed=params["seed"],
        seconds_param=seconds_param,
    )
    if frames:
        prepared = references.prepare_all(frames, get_fetcher(), config)
        ttl = config["GENERATION_TIMEOUT"] + 300
        entries = reference_stash.describe(prepared, 0.5)
        reference_stash.stash(get_store(), entries, prepared, ttl)
        spec["references"] = entries
    return spec


def _video_job(who: Caller, video_id: str) -> dict[str, Any]:
    job = get_jobs().get_for(who, video_id)
    if job.get("kind") != "video":
        raise NotFoundError(f"No video with id '{video_id[:80]}'.", code="not_found")
    return job


def _object(job: dict[str, Any]) -> dict[str, Any]:
    return video_object(job, current_app.config["JOB_TTL"])


def _poll_headers(job: dict[str, Any]) -> dict[str, str]:
    """``openai-poll-after-ms`` sets the SDK's poll interval (until done)."""
    headers = {"X-Task-Id": job["id"]}
    if job["status"] in ("queued", "in_progress"):
        headers["openai-poll-after-ms"] = str(POLL_AFTER_MS)
    return headers


def _all_videos(who: Caller) -> list[dict[str, Any]]:
    """The caller's video jobs, newest first (the first MAX_SCAN jobs)."""
    jobs, after, seen = [], None, 0
    while seen < MAX_SCAN:
        page, more = get_jobs().list_for(who, MAX_LIMIT, after)
        seen += len(page)
        jobs += [job for job in page if job.get("kind") == "video"]
        if not more or not page:
            break
        after = page[-1]["id"]
    return jobs


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequestError(
            f"limit must be an integer from 1 to {MAX_LIMIT}.", param="limit"
        )
    return int(raw)
