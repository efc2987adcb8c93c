"""The OpenAPI 3.1 document, generated from the URL map and the marshmallow schemas.

Request bodies are the schemas the views validate with (``schemas.py``); the
response schemas below exist only to describe what the views return. ``OPERATIONS``
says, per endpoint, which of them apply; a route missing from it still appears in
the document (with a generic response), and ``tests/test_openapi.py`` fails until
it is described.
"""

from __future__ import annotations

import inspect
import re
import sys
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema
from werkzeug.routing import Rule

from .openapi_schemas import (
    ChatCompletionChunkSchema,
    ChatCompletionObjectSchema,
    ErrorResponseSchema,
    HealthSchema,
    ImagesResponseSchema,
    ImageStreamEventSchema,
    ModelListSchema,
    ModelSchema,
    SessionPointsSchema,
    SessionReceiptSchema,
    TaskDeletedSchema,
    TaskListSchema,
    TaskSchema,
    TokenLiveSchema,
    VersionSchema,
    VideoDeletedSchema,
    VideoGenerationResponseSchema,
    VideoListSchema,
    VideoSchema,
)
from .schemas import ChatCompletionSchema, TokenCheckSchema
from .schemas_images import ImageRequestSchema
from .schemas_videos import VideoCreateSchema, VideoGenerationSchema

OPENAPI_VERSION = "3.1.0"
SESSION_AUTH = "sessionAuth"
METRICS_AUTH = "metricsToken"
HIDDEN_ENDPOINTS = frozenset({"static"})
HIDDEN_METHODS = frozenset({"HEAD", "OPTIONS"})


COMPONENTS: dict[str, type[Schema]] = {
    "Task": TaskSchema,
    "TaskList": TaskListSchema,
    "TaskDeleted": TaskDeletedSchema,
    "Health": HealthSchema,
    "Version": VersionSchema,
    "ImageGenerationRequest": ImageRequestSchema,
    "ChatCompletionRequest": ChatCompletionSchema,
    "TokenCheckRequest": TokenCheckSchema,
    "ErrorResponse": ErrorResponseSchema,
    "ImagesResponse": ImagesResponseSchema,
    "ImageStreamEvent": ImageStreamEventSchema,
    "ChatCompletion": ChatCompletionObjectSchema,
    "ChatCompletionChunk": ChatCompletionChunkSchema,
    "Model": ModelSchema,
    "ModelList": ModelListSchema,
    "TokenLive": TokenLiveSchema,
    "SessionPoints": SessionPointsSchema,
    "SessionReceipt": SessionReceiptSchema,
    "VideoCreateRequest": VideoCreateSchema,
    "VideoGenerationRequest": VideoGenerationSchema,
    "Video": VideoSchema,
    "VideoList": VideoListSchema,
    "VideoDeleted": VideoDeletedSchema,
    "VideoGenerationResponse": VideoGenerationResponseSchema,
}


# --- what each endpoint takes and returns ---


@dataclass(frozen=True)
class Operation:
    """How to describe one endpoint.

    *content* maps the 200 response's media types to a schema (a marshmallow
    class, or a JSON schema dict whose ``items``/``oneOf`` may name classes).
    *request* is the schema the view loads its body with; *example*, a body.
    *auth*: ``None`` (public), ``"required"`` or ``"optional"``; *scheme* names it.
    """

    content: dict[str, Any]
    request: type[Schema] | None = None
    example: dict[str, Any] | None = None
    errors: tuple[int, ...] = (500,)
    auth: str | None = None
    scheme: str = SESSION_AUTH
    description: str | None = None


TEXT = {"type": "string"}
GENERATION_ERRORS = (400, 401, 403, 404, 413, 429, 500, 502, 503, 504)
ACCOUNT_ERRORS = (400, 401, 413, 500, 503)

IMAGE_CONTENT = {
    "application/json": ImagesResponseSchema,
    "text/event-stream": {"oneOf": [ImageStreamEventSchema, ErrorResponseSchema]},
}
IMAGE_STREAM = (
    "With `stream: true` the answer is `text/event-stream`: one "
    "`image_generation.completed` (edits: `image_edit.completed`) event per image "
    "as soon as Jimeng has it, each after a small `…partial_image` preview when "
    "`partial_images` >= 1, `: keep-alive` comments while waiting, then "
    "`data: [DONE]`; a failure after the stream began is a `data: <ErrorResponse>` "
    "event."
)
EDIT_FORM = (
    "Also `multipart/form-data`, as OpenAI's `images.edit` sends it: `image` (one "
    "file) or `image[]` (several, in order) and the other fields as text. 1-10 "
    "references; `mask` is refused (400 `mask_not_supported`)."
)

OPERATIONS: dict[str, Operation] = {
    "images.create_image": Operation(
        IMAGE_CONTENT,
        request=ImageRequestSchema,
        example={"model": "jimeng-3.0", "prompt": "一只可爱的猫", "n": 4},
        errors=GENERATION_ERRORS,
        auth="required",
        description=IMAGE_STREAM,
    ),
    "edits.create_edit": Operation(
        IMAGE_CONTENT,
        request=ImageRequestSchema,
        example={
            "model": "jimeng-4.0",
            "prompt": "the same cat, in snow",
            "image": ["https://example.com/cat.png"],
            "n": 1,
        },
        errors=GENERATION_ERRORS,
        auth="required",
        description=EDIT_FORM + " " + IMAGE_STREAM,
    ),
    "edits.create_composition": Operation(
        IMAGE_CONTENT,
        request=ImageRequestSchema,
        example={
            "model": "jimeng-4.0",
            "prompt": "put them together",
            "images": ["https://example.com/a.png", "https://example.com/b.png"],
        },
        errors=GENERATION_ERRORS,
        auth="required",
        description=EDIT_FORM,
    ),
    "chat.create_chat_completion": Operation(
        {
            "application/json": ChatCompletionObjectSchema,
            "text/event-stream": {
                "oneOf": [ChatCompletionChunkSchema, ErrorResponseSchema]
            },
        },
        request=ChatCompletionSchema,
        example={
            "model": "jimeng-3.0",
            "messages": [{"role": "user", "content": "一只可爱的猫"}],
            "stream": True,
        },
        errors=GENERATION_ERRORS,
        auth="required",
        description=(
            "With `stream: true` the answer is `text/event-stream`: one "
            "`data: <ChatCompletionChunk>` event per image as it appears, "
            "`: keep-alive` comments while waiting, a chunk with `finish_reason` "
            '"stop", then `data: [DONE]`. A failure after the stream started '
            "arrives as a `data: <ErrorResponse>` event."
        ),
    ),
    "models.list_all": Operation({"application/json": ModelListSchema}),
    "models.retrieve": Operation({"application/json": ModelSchema}, errors=(404, 500)),
    "token.check_token": Operation(
        {"application/json": TokenLiveSchema},
        request=TokenCheckSchema,
        example={"token": "0123456789abcdef0123456789abcdef"},
        errors=(400, 401, 413, 500, 502, 504),
        auth="optional",
        description="Needs an API key only in pooled mode.",
    ),
    "token.retrieve_points": Operation(
        {"application/json": {"type": "array", "items": SessionPointsSchema}},
        errors=ACCOUNT_ERRORS,
        auth="required",
        description="One entry per session, in order; pooled mode lists the pool.",
    ),
    "token.receive_credits": Operation(
        {"application/json": {"type": "array", "items": SessionReceiptSchema}},
        errors=ACCOUNT_ERRORS,
        auth="required",
        description="One entry per session, in order; pooled mode lists the pool.",
    ),
    "health.ping": Operation({"text/plain": TEXT}),
    "health.health": Operation(
        {"application/json": HealthSchema},
        errors=(503,),
        description="503 while the store is unusable; `degraded` when the session "
        "file could not be reread (the last good list stays in use).",
    ),
    "health.version": Operation({"application/json": VersionSchema}),
    "tasks.retrieve_task": Operation(
        {"application/json": TaskSchema}, errors=(401, 404, 500, 503), auth="required"
    ),
    "tasks.list_tasks": Operation(
        {"application/json": TaskListSchema},
        errors=(400, 401, 500, 503),
        auth="required",
        description="Your tasks, newest first; `?limit=1..100&after=<task id>`.",
    ),
    "tasks.delete_task": Operation(
        {"application/json": TaskDeletedSchema},
        errors=(401, 404, 500, 503),
        auth="required",
        description="Stops polling and forgets the task; Jimeng is not asked to "
        "cancel it.",
    ),
    "health.index": Operation({"text/html": TEXT}),
    "observability.prometheus_metrics": Operation(
        {"text/plain": TEXT},
        errors=(401, 500),
        auth="optional",
        scheme=METRICS_AUTH,
        description="Needs `Bearer <METRICS_TOKEN>` when that is set.",
    ),
    "docs.openapi_document": Operation({"application/json": {"type": "object"}}),
    "docs.swagger_ui": Operation({"text/html": TEXT}),
    "docs.swagger_asset": Operation({"*/*": TEXT}, errors=(404, 500)),
    "videos.create_video": Operation(
        {"application/json": VideoSchema},
        request=VideoCreateSchema,
        example={
            "model": "jimeng-video-seedance-2.5",
            "prompt": "一只猫在奔跑",
            "seconds": "8",
            "size": "1280x720",
        },
        errors=GENERATION_ERRORS,
        auth="required",
        description=(
            "JSON or `multipart/form-data` (what the OpenAI SDKs send): "
            "`input_reference` (the first frame) and `last_frame` as files, URLs, "
            'data: URIs or `{"image_url": …}`. `seconds` and `size` take '
            "OpenAI's values (mapped to the nearest the model makes) and the "
            "model's own."
        ),
    ),
    "videos.retrieve_video": Operation(
        {"application/json": VideoSchema}, errors=(401, 404, 500), auth="required"
    ),
    "videos.list_videos": Operation(
        {"application/json": VideoListSchema}, errors=(400, 401, 500), auth="required"
    ),
    "videos.delete_video": Operation(
        {"application/json": VideoDeletedSchema},
        errors=(401, 404, 500),
        auth="required",
    ),
    "videos.download_video": Operation(
        {"video/mp4": {"type": "string", "format": "binary"}},
        errors=(400, 401, 404, 500, 502, 504),
        auth="required",
        description="`Range` requests are answered with 206 and the part asked for.",
    ),
    "videos.create_video_generation": Operation(
        {"application/json": VideoGenerationResponseSchema},
        request=VideoGenerationSchema,
        example={
            "model": "jimeng-video-seedance-2.5",
            "prompt": "一只猫在奔跑",
            "duration": 5,
            "ratio": "16:9",
            "resolution": "720p",
        },
        errors=GENERATION_ERRORS,
        auth="required",
        description=(
            "Waits for the video; blank lines keep the connection open meanwhile "
            "(JSON allows leading whitespace). `Prefer: respond-async` answers 202 "
            "with the task."
        ),
    ),
}

STATUS_TEXT = {
    400: "Invalid request (the body, a parameter, or too many session ids).",
    401: "Missing or invalid credentials, or an expired Jimeng session.",
    403: "Jimeng refused this account (risk control).",
    404: "Unknown model or resource.",
    405: "Method not allowed.",
    413: "The request body is too large.",
    429: "Too many concurrent generations, or no credits left.",
    500: "Server error.",
    502: "Jimeng returned an error or could not generate the image.",
    503: "No session is available (pooled mode).",
    504: "Jimeng did not answer in time.",
}
RETRY_HEADER = {
    "description": "Whether a client may retry (the openai SDKs obey it).",
    "schema": {"type": "string", "enum": ["true", "false"]},
}

_CONVERTER = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_PARAM_TYPES = {"int": {"type": "integer"}, "float": {"type": "number"}}


# --- building ---


def get_spec(app: Flask) -> dict[str, Any]:
    """Return the app's document, built on first use and cached."""
    spec = app.extensions.get("openapi")
    if spec is None:
        spec = app.extensions["openapi"] = build_spec(app)
    return spec


def build_spec(app: Flask) -> dict[str, Any]:
    """Describe every route of *app* (except ``static``) as an OpenAPI document."""
    from . import __version__  # the package imports this module first

    spec = APISpec(
        title="jimeng-api",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "OpenAI-compatible API for Jimeng (即梦) image generation. Errors "
                "are OpenAI error objects (`ErrorResponse`)."
            )
        },
        servers=[{"url": "/"}],
    )
    spec.components.security_scheme(
        SESSION_AUTH,
        {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "Jimeng session id(s), comma-separated (the `sessionid` cookie "
                "value), or an API key in pooled mode."
            ),
        },
    )
    spec.components.security_scheme(
        METRICS_AUTH,
        {"type": "http", "scheme": "bearer", "description": "`METRICS_TOKEN`."},
    )
    for name, schema in COMPONENTS.items():
        spec.components.schema(name, schema=schema)

    tags: dict[str, str] = {}
    paths: dict[str, dict[str, Any]] = {}
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
    for rule in rules:
        if rule.endpoint in HIDDEN_ENDPOINTS:
            continue
        tag = rule.endpoint.partition(".")[0]
        tags.setdefault(tag, _tag_description(app, tag))
        path = paths.setdefault(openapi_path(rule), {})
        for method in sorted((rule.methods or set()) - HIDDEN_METHODS):
            path[method.lower()] = _operation(app, rule, tag)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    for name, description in sorted(tags.items()):
        spec.tag({"name": name, "description": description})
    return spec.to_dict()


def openapi_path(rule: Rule) -> str:
    """``/v1/models/<path:model_id>`` → ``/v1/models/{model_id}``."""
    return _CONVERTER.sub(r"{\g<name>}", rule.rule)


def _operation(app: Flask, rule: Rule, tag: str) -> dict[str, Any]:
    doc = OPERATIONS.get(rule.endpoint) or Operation({"*/*": {}})
    docstring = inspect.getdoc(app.view_functions[rule.endpoint]) or ""
    summary, _, details = docstring.partition("\n")
    description = "\n\n".join(
        markdown(text) for text in (details.strip(), doc.description) if text
    )
    operation: dict[str, Any] = {
        "operationId": rule.endpoint.replace(".", "_"),
        "tags": [tag],
        "summary": summary.replace("``", "").strip() or rule.endpoint,
        "responses": {
            "200": {
                "description": "OK",
                "content": {m: {"schema": s} for m, s in doc.content.items()},
            },
            **{str(status): _error_response(status) for status in doc.errors},
        },
    }
    if description:
        operation["description"] = description
    parameters = _path_parameters(rule)
    if parameters:
        operation["parameters"] = parameters
    if doc.request is not None:
        body: dict[str, Any] = {"schema": doc.request}
        if doc.example is not None:
            body["example"] = doc.example
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": body},
        }
    if doc.auth == "required":
        operation["security"] = [{doc.scheme: []}]
    elif doc.auth == "optional":
        operation["security"] = [{}, {doc.scheme: []}]
    return operation


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": STATUS_TEXT.get(status, "Error."),
        "headers": {"x-should-retry": RETRY_HEADER},
        "content": {"application/json": {"schema": ErrorResponseSchema}},
    }


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    parameters = []
    for match in _CONVERTER.finditer(rule.rule):
        converter = match["converter"] or "default"
        parameter = {
            "name": match["name"],
            "in": "path",
            "required": True,
            "schema": _PARAM_TYPES.get(converter, {"type": "string"}),
        }
        if converter == "path":
            parameter["description"] = "may contain '/'"
        parameters.append(parameter)
    return parameters


def _tag_description(app: Flask, tag: str) -> str:
    """The first line of the blueprint's module docstring."""
    blueprint = app.blueprints.get(tag)
    module = sys.modules.get(blueprint.import_name) if blueprint else None
    doc = inspect.getdoc(module) if module else None
    return markdown(doc.splitlines()[0]) if doc else tag


def markdown(docstring: str) -> str:
    """Turn reST literals (double backticks) into Markdown ones, for Swagger UI."""
    return docstring.replace("``", "`")
