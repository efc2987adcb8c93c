"""The response schemas of the OpenAPI document (documentation only: the views
build their answers themselves; ``openapi.py`` says which schema each returns)."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields
from marshmallow.validate import OneOf

# --- response schemas (documentation only) ---


class ResponseSchema(Schema):
    """Base: says nothing about extra properties, so adding one is compatible."""

    class Meta:
        unknown = EXCLUDE


def constant(value: str, **kwargs: Any) -> fields.String:
    """A string that is always *value* (an ``enum`` of one)."""
    return fields.String(required=True, validate=OneOf([value]), **kwargs)


class ErrorObjectSchema(ResponseSchema):
    message = fields.String(required=True)
    type = fields.String(
        required=True, metadata={"description": "e.g. invalid_request_error"}
    )
    param = fields.String(required=True, allow_none=True)
    code = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "e.g. session_expired, insufficient_quota"},
    )


class ErrorResponseSchema(ResponseSchema):
    """Every error, in OpenAI's shape."""

    error = fields.Nested(ErrorObjectSchema, required=True)


class ImageSchema(ResponseSchema):
    """One image: ``url`` or ``b64_json``, as ``response_format`` asked."""

    url = fields.String(metadata={"description": "with response_format=url"})
    b64_json = fields.String(metadata={"description": "with response_format=b64_json"})


class ImagesResponseSchema(ResponseSchema):
    created = fields.Integer(required=True, metadata={"description": "Unix time"})
    data = fields.List(fields.Nested(ImageSchema), required=True)
    size = fields.String(metadata={"description": "WIDTHxHEIGHT of the draft"})
    quality = fields.String(metadata={"description": "low, medium or high"})
    background = fields.String(metadata={"description": "always opaque"})
    output_format = fields.String(metadata={"description": "with b64_json"})
    input_images = fields.Integer(metadata={"description": "compositions only"})
    composition_type = fields.String(metadata={"description": "compositions only"})


class ImageStreamEventSchema(ResponseSchema):
    """One event of an image stream (``stream: true``): each image as it comes."""

    type = fields.String(
        required=True,
        validate=OneOf(
            [
                f"{prefix}.{kind}"
                for prefix in ("image_generation", "image_edit")
                for kind in ("partial_image", "completed")
            ]
        ),
    )
    b64_json = fields.String(required=True)
    image_index = fields.Integer(required=True)
    partial_image_index = fields.Integer(metadata={"description": "partial only"})
    size = fields.String()
    quality = fields.String()
    background = fields.String()
    output_format = fields.String()
    created_at = fields.Integer()
    usage = fields.Dict(metadata={"description": "completed only (an estimate)"})


class UsageSchema(ResponseSchema):
    """Estimated tokens (about 4 characters each); Jimeng bills in credits."""

    prompt_tokens = fields.Integer(required=True)
    completion_tokens = fields.Integer(required=True)
    total_tokens = fields.Integer(required=True)


class AssistantMessageSchema(ResponseSchema):
    role = constant("assistant")
    content = fields.String(
        required=True, metadata={"description": "Markdown images, one per line"}
    )


class ChoiceSchema(ResponseSchema):
    index = fields.Integer(required=True)
    message = fields.Nested(AssistantMessageSchema, required=True)
    logprobs = fields.Raw(required=True, allow_none=True)
    finish_reason = fields.String(required=True)


class ChatCompletionObjectSchema(ResponseSchema):
    id = fields.String(required=True)
    object = constant("chat.completion")
    created = fields.Integer(required=True)
    model = fields.String(required=True)
    choices = fields.List(fields.Nested(ChoiceSchema), required=True)
    usage = fields.Nested(UsageSchema, required=True)


class DeltaSchema(ResponseSchema):
    role = fields.String(
        validate=OneOf(["assistant"]), metadata={"description": "first chunk only"}
    )
    content = fields.String()


class ChunkChoiceSchema(ResponseSchema):
    index = fields.Integer(required=True)
    delta = fields.Nested(DeltaSchema, required=True)
    finish_reason = fields.String(required=True, allow_none=True)


class ChatCompletionChunkSchema(ResponseSchema):
    """One ``data:`` event of a streamed completion."""

    id = fields.String(required=True)
    object = constant("chat.completion.chunk")
    created = fields.Integer(required=True)
    model = fields.String(required=True)
    choices = fields.List(
        fields.Nested(ChunkChoiceSchema),
        required=True,
        metadata={"description": "empty in the final usage chunk"},
    )
    usage = fields.Nested(
        UsageSchema, metadata={"description": "with stream_options.include_usage"}
    )


class ModelSchema(ResponseSchema):
    id = fields.String(required=True)
    object = constant("model")
    created = fields.Integer(required=True)
    owned_by = fields.String(required=True)


class ModelListSchema(ResponseSchema):
    object = constant("list")
    data = fields.List(fields.Nested(ModelSchema), required=True)


class TokenLiveSchema(ResponseSchema):
    live = fields.Boolean(required=True)


class CreditsSchema(ResponseSchema):
    giftCredit = fields.Integer(required=True)  # noqa: N815 (wire names)
    purchaseCredit = fields.Integer(required=True)  # noqa: N815
    vipCredit = fields.Integer(required=True)  # noqa: N815
    totalCredit = fields.Integer(required=True)  # noqa: N815
    videoCredit = fields.Integer(  # noqa: N815
        metadata={"description": "the part that pays for video: purchased + VIP"}
    )


class SessionPointsSchema(ResponseSchema):
    """One session's balance, or the error that session alone met."""

    token = fields.String(required=True, metadata={"description": "masked"})
    points = fields.Nested(CreditsSchema)
    error = fields.Nested(ErrorObjectSchema)


class SessionReceiptSchema(ResponseSchema):
    """One session's daily claim and its balance afterwards."""

    token = fields.String(required=True, metadata={"description": "masked"})
    received = fields.Boolean()
    receiveQuota = fields.Integer(allow_none=True)  # noqa: N815
    credits = fields.Nested(CreditsSchema)
    error = fields.Nested(
        ErrorObjectSchema,
        metadata={"description": "why the claim or the balance failed"},
    )


class VideoErrorSchema(ResponseSchema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    param = fields.String(allow_none=True)
    type = fields.String(allow_none=True)


class VideoSchema(ResponseSchema):
    """A video job in OpenAI's shape (openai-python ``Video``)."""

    id = fields.String(required=True)
    object = constant("video")
    model = fields.String(required=True)
    status = fields.String(
        required=True,
        validate=OneOf(["queued", "in_progress", "completed", "failed"]),
    )
    progress = fields.Integer(required=True, metadata={"description": "0-100"})
    prompt = fields.String(allow_none=True)
    seconds = fields.String(required=True)
    size = fields.String(required=True, metadata={"description": "WIDTHxHEIGHT"})
    created_at = fields.Integer(required=True)
    completed_at = fields.Integer(required=True, allow_none=True)
    expires_at = fields.Integer(required=True, allow_none=True)
    error = fields.Nested(VideoErrorSchema, required=True, allow_none=True)
    remixed_from_video_id = fields.String(allow_none=True)
    ratio = fields.String(metadata={"description": "Jimeng's aspect ratio"})
    resolution = fields.String(metadata={"description": "480p, 720p, 1080p"})


class VideoListSchema(ResponseSchema):
    object = constant("list")
    data = fields.List(fields.Nested(VideoSchema), required=True)
    first_id = fields.String(required=True, allow_none=True)
    last_id = fields.String(required=True, allow_none=True)
    has_more = fields.Boolean(required=True)


class VideoDeletedSchema(ResponseSchema):
    id = fields.String(required=True)
    object = constant("video.deleted")
    deleted = fields.Boolean(required=True)


class GeneratedVideoSchema(ResponseSchema):
    url = fields.String(required=True)
    revised_prompt = fields.String(allow_none=True)


class VideoGenerationResponseSchema(ResponseSchema):
    """The forks' synchronous answer."""

    created = fields.Integer(required=True, metadata={"description": "Unix time"})
    data = fields.List(fields.Nested(GeneratedVideoSchema), required=True)


#: Named components; nested schemas get their class name without ``Schema``.
class TaskProgressSchema(ResponseSchema):
    images = fields.Integer()
    expected = fields.Integer()
    stage = fields.String(
        metadata={"description": "queued, processing, finishing, final"}
    )
    queue_position = fields.Integer()
    queue_length = fields.Integer(allow_none=True)


class TaskSchema(ResponseSchema):
    """A generation as a task (``Prefer: respond-async``, ``/v1/tasks``)."""

    id = fields.String(required=True)
    object = constant("task")
    kind = fields.String(required=True, metadata={"description": "images, chat, video"})
    status = fields.String(
        required=True,
        validate=OneOf(["queued", "in_progress", "completed", "failed", "cancelled"]),
    )
    progress = fields.Nested(TaskProgressSchema, required=True)
    partial = fields.String(allow_none=True, metadata={"description": "got/asked"})
    created_at = fields.Integer(required=True)
    completed_at = fields.Integer(allow_none=True)
    result = fields.Dict(
        allow_none=True,
        metadata={"description": "exactly the body the synchronous call returns"},
    )
    error = fields.Nested(ErrorObjectSchema, allow_none=True)


class TaskListSchema(ResponseSchema):
    object = constant("list")
    data = fields.List(fields.Nested(TaskSchema), required=True)
    first_id = fields.String(allow_none=True)
    last_id = fields.String(allow_none=True)
    has_more = fields.Boolean(required=True)


class TaskDeletedSchema(ResponseSchema):
    id = fields.String(required=True)
    object = constant("task.deleted")
    deleted = fields.Boolean(required=True)


class HealthSchema(ResponseSchema):
    status = fields.String(required=True, validate=OneOf(["ok", "degraded"]))
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class VersionSchema(ResponseSchema):
    object = constant("version")
    version = fields.String(required=True)
    demo = fields.Boolean(required=True)
