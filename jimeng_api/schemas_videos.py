"""Request bodies of the video endpoints: OpenAI's ``POST /v1/videos`` (JSON or
multipart) and the forks' ``POST /v1/videos/generations``.

Each comes as a JSON schema and a form schema (multipart text fields: numbers
arrive as strings). Frames (``input_reference``, ``last_frame``; the forks'
``file_paths``) are only type-checked here; ``references.py`` reads them and
names the bad one. ``seconds`` and ``size`` are checked against the model in
``videos.py``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validates
from marshmallow.validate import Length, OneOf, Range

from .schemas import MAX_USER_LENGTH, CallbackURL, Name, RequestSchema

SEED = Range(0, 2**32 - 1)


class Seconds(fields.Field):
    """A whole number of seconds: ``8`` or ``"8"`` (OpenAI sends a string)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValidationError("Must be a whole number of seconds.")
        text = str(value).strip()
        if not text.isdigit() or len(text) > 4:
            raise ValidationError("Must be a whole number of seconds.")
        return text


def _frame(value: Any) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, dict):
        if value.get("file_id") is not None:
            raise ValidationError(
                "'file_id' references are not supported: send the image itself "
                "(a file, a URL, a data: URI or base64) or {'image_url': ...}."
            )
        if any(isinstance(value.get(k), str) for k in ("image_url", "url", "b64_json")):
            return
    raise ValidationError(
        "Must be an image file, an image URL, a data: URI or base64, or an object "
        "with 'image_url'."
    )


class _Frames:
    """The frame fields, as JSON values (files come separately)."""

    input_reference = fields.Raw(load_default=None, allow_none=True)
    last_frame = fields.Raw(load_default=None, allow_none=True)

    @validates("input_reference")
    def _input_reference(self, value: Any, **_: Any) -> None:
        if value is not None:
            _frame(value)

    @validates("last_frame")
    def _last_frame(self, value: Any, **_: Any) -> None:
        if value is not None:
            _frame(value)


class VideoCreateSchema(_Frames, RequestSchema):
    """``POST /v1/videos`` as JSON: OpenAI's fields and ours."""

    prompt = fields.String(required=True)
    model = Name(load_default=None)
    seconds = Seconds(load_default=None)
    size = Name(load_default=None)
    ratio = Name(load_default=None)
    resolution = Name(load_default=None)
    seed = fields.Integer(strict=True, load_default=None, validate=SEED)
    user = fields.String(load_default=None, validate=Length(max=MAX_USER_LENGTH))
    callback_url = CallbackURL(load_default=None)


class VideoCreateFormSchema(VideoCreateSchema):
    """The same as multipart text fields (the official SDKs send this)."""

    seed = fields.Integer(load_default=None, validate=SEED)


class VideoGenerationSchema(RequestSchema):
    """``POST /v1/videos/generations``, the forks' synchronous shape: frames as
    ``file_paths``/``filePaths`` (first, last) or multipart ``image_file_1``/
    ``image_file_2``."""

    prompt = fields.String(required=True)
    model = Name(load_default=None)
    duration = Seconds(load_default=None)
    seconds = Seconds(load_default=None)
    size = Name(load_default=None)
    ratio = Name(load_default=None)
    resolution = Name(load_default=None)
    seed = fields.Integer(strict=True, load_default=None, validate=SEED)
    file_paths = fields.List(fields.String(), load_default=None, validate=Length(max=2))
    filePaths = fields.List(  # noqa: N815 (the forks' name)
        fields.String(), load_default=None, validate=Length(max=2)
    )
    response_format = fields.String(load_default="url", validate=OneOf(("url",)))
    user = fields.String(load_default=None, validate=Length(max=MAX_USER_LENGTH))
    callback_url = CallbackURL(load_default=None)


class VideoGenerationFormSchema(VideoGenerationSchema):
    seed = fields.Integer(load_default=None, validate=SEED)


video_create_schema = VideoCreateSchema()
video_create_form_schema = VideoCreateFormSchema()
video_generation_schema = VideoGenerationSchema()
video_generation_form_schema = VideoGenerationFormSchema()
