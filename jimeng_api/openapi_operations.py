"""What each endpoint of the OpenAPI document takes and returns: the schema
components, and per endpoint its request schema, example, responses and
authentication (``openapi.py`` builds the document from these and the URL map).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema

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

SESSION_AUTH = "sessionAuth"
METRICS_AUTH = "metricsToken"


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
