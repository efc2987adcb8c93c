"""Request bodies of the image endpoints beyond text to image: references,
``quality``/``output_format``, streaming, and ``images.edit``'s multipart form.

``ImageRequestSchema`` is what ``/v1/images/generations`` and a JSON edit take
(``ImageGenerationSchema`` plus these fields); ``ImageEditFormSchema`` is the
same request as multipart text fields (numbers and booleans arrive as strings).
The references themselves (``image``, ``images``) are only type-checked here;
``references.py`` reads them and names the bad one.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validates
from marshmallow.validate import Length, OneOf, Range

from .references import QUALITIES
from .schemas import (
    MAX_USER_LENGTH,
    CallbackURL,
    ImageGenerationSchema,
    Name,
    PromptText,
    RequestSchema,
    StrictBoolean,
)

OUTPUT_FORMATS = ("png", "jpeg", "jpg", "webp")
BACKGROUNDS = ("auto", "opaque", "transparent")
RESPONSE_FORMATS = ("url", "b64_json")


def _references(value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, (str, dict)) for item in items):
        raise ValidationError(
            "Must be an image URL, a data: URI or base64, an object with 'url' "
            "or 'b64_json', or a list of them."
        )


class ImageRequestSchema(ImageGenerationSchema):
    """``/v1/images/generations`` and JSON ``/v1/images/edits``."""

    image = fields.Raw(load_default=None, allow_none=True)
    images = fields.Raw(load_default=None, allow_none=True)  # the forks' name
    quality = fields.String(
        load_default=None, allow_none=True, validate=OneOf(QUALITIES)
    )
    output_format = fields.String(
        load_default=None, allow_none=True, validate=OneOf(OUTPUT_FORMATS)
    )
    output_compression = fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=Range(0, 100)
    )
    background = fields.String(
        load_default=None, allow_none=True, validate=OneOf(BACKGROUNDS)
    )
    stream = StrictBoolean(load_default=False, allow_none=True)
    partial_images = fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=Range(0, 3)
    )

    @validates("image")
    def _image(self, value: Any, **_: Any) -> None:
        if value is not None:
            _references(value)

    @validates("images")
    def _images(self, value: Any, **_: Any) -> None:
        if value is not None:
            _references(value)


image_request_schema = ImageRequestSchema()


class ImageEditFormSchema(RequestSchema):
    """The text fields of a multipart ``/v1/images/edits`` (files apart)."""

    prompt = fields.String(required=True)
    model = Name(load_default=None)
    n = fields.Integer(load_default=None, validate=Range(1, 8))
    size = Name(load_default=None)
    width = fields.Integer(load_default=None)
    height = fields.Integer(load_default=None)
    ratio = Name(load_default=None)
    resolution = Name(load_default=None)
    negative_prompt = PromptText(load_default=None)
    negativePrompt = PromptText(load_default=None)  # noqa: N815 (as in JSON)
    sample_strength = fields.Float(
        load_default=0.5, allow_nan=False, validate=Range(0, 1)
    )
    seed = fields.Integer(load_default=None, validate=Range(0, 2**32 - 1))
    response_format = fields.String(
        load_default="url", validate=OneOf(RESPONSE_FORMATS)
    )
    quality = fields.String(load_default=None, validate=OneOf(QUALITIES))
    output_format = fields.String(load_default=None, validate=OneOf(OUTPUT_FORMATS))
    output_compression = fields.Integer(load_default=None, validate=Range(0, 100))
    background = fields.String(load_default=None, validate=OneOf(BACKGROUNDS))
    stream = fields.Boolean(load_default=False)
    partial_images = fields.Integer(load_default=None, validate=Range(0, 3))
    user = fields.String(load_default=None, validate=Length(max=MAX_USER_LENGTH))
    callback_url = CallbackURL(load_default=None)


image_edit_form_schema = ImageEditFormSchema()
