"""Request bodies: marshmallow schemas and the boundary helper that loads them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import current_app, has_app_context, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates
from marshmallow.validate import Length, OneOf, Range

from .errors import InvalidRequestError
from .upstream.tokens import SESSION_ID

MAX_JSON_DEPTH = 64
MAX_NAME_LENGTH = 128  # model ids, sizes, ratios
MAX_USER_LENGTH = 256  # OpenAI's ``user``
MAX_URL_LENGTH = 2048


class RequestSchema(Schema):
    """Base: unknown fields are accepted and ignored, as OpenAI clients send extras."""

    class Meta:
        unknown = EXCLUDE


def _depth(value: Any, limit: int) -> int:
    """Return the nesting depth of *value*, stopping once past *limit*."""
    stack, deepest = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        if isinstance(node, Mapping):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _has_lone_surrogate(body: dict[str, Any]) -> bool:
    """Return whether a string in *body* holds an unpaired UTF-16 surrogate."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_json_object() -> dict[str, Any]:
    """Return the request body as a JSON object, or raise a 400 saying why."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidRequestError("The request body is empty; send a JSON object.")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        message = f"The request body is not valid JSON: {reason}."
        raise InvalidRequestError(message) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    if b"\\u" in raw and _has_lone_surrogate(body):
        raise InvalidRequestError("The request body contains an invalid \\u escape.")
    if _depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise InvalidRequestError("The request body is nested too deeply.")
    return body


def _first_error(messages: Any, path: tuple[str, ...] = ()) -> tuple[str, str]:
    """Flatten marshmallow's nested error dict to (dotted param, message)."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        return _first_error(value, (*path, str(key)))
    if isinstance(messages, list) and messages:
        first = messages[0]
        if isinstance(first, (dict, list)):
            return _first_error(first, path)
        return ".".join(path), str(first)
    return ".".join(path), str(messages)


def load_json(schema: Schema, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate the JSON body with *schema*; errors become a 400 naming the param."""
    if body is None:
        body = read_json_object()
    try:
        return schema.load(body)
    except ValidationError as exc:
        param, message = _first_error(exc.messages)
        raise InvalidRequestError(f"Invalid '{param}': {message}", param=param) from exc


class StrictFloat(fields.Float):
    """A JSON number only: ``"0.5"`` (a string) and ``true`` are refused."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """A JSON boolean only: ``"false"``, ``1`` and ``1.0`` are refused (``1.0 in
    {True}`` is true in Python, so the type is checked, not set membership)."""

    truthy = {True}
    falsy = {False}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if value is not True and value is not False:
            raise self.make_error("invalid", input=value)
        return value


class Name(fields.String):
    """A short identifier-like string (model, size, ratio…)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=Length(max=MAX_NAME_LENGTH), **kwargs)


class PromptText(fields.String):
    """Free text limited like the prompt, by ``MAX_PROMPT_LENGTH`` (of the app)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        limit = _setting("MAX_PROMPT_LENGTH")
        if len(text) > limit:
            raise ValidationError(f"Longer than maximum length {limit}.")
        return text


class CallbackURL(fields.String):
    """A webhook URL: parsed strictly and checked (public address) at once."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        url = super()._deserialize(value, attr, data, **kwargs)
        if len(url) > MAX_URL_LENGTH:
            raise ValidationError(f"Longer than maximum length {MAX_URL_LENGTH}.")
        from .extensions import get_fetcher  # lazily: extensions imports the API
        from .webhooks import validate_callback_url

        return validate_callback_url(url, current_app.config, get_fetcher()) or url


def _setting(name: str) -> Any:
    """Return a setting of the current app (or its default outside one)."""
    if has_app_context():
        return current_app.config[name]
    from config import Config

    return getattr(Config, name)


class ImageGenerationSchema(RequestSchema):
    """``POST /v1/images/generations`` (OpenAI fields plus the seed's extensions)."""

    prompt = fields.String(required=True)
    model = Name(load_default=None)
    n = fields.Integer(strict=True, load_default=None, validate=Range(1, 8))
    size = Name(load_default=None)
    width = fields.Integer(strict=True, load_default=None)
    height = fields.Integer(strict=True, load_default=None)
    ratio = Name(load_default=None)
    resolution = Name(load_default=None)
    negative_prompt = PromptText(load_default=None)
    negativePrompt = PromptText(load_default=None)  # noqa: N815 (seed README)
    sample_strength = StrictFloat(
        load_default=0.5, allow_nan=False, validate=Range(0, 1)
    )
    seed = fields.Integer(strict=True, load_default=None, validate=Range(0, 2**32 - 1))
    response_format = fields.String(
        load_default="url", validate=OneOf(("url", "b64_json"))
    )
    user = fields.String(load_default=None, validate=Length(max=MAX_USER_LENGTH))
    callback_url = CallbackURL(load_default=None)


image_generation_schema = ImageGenerationSchema()


class MessageSchema(RequestSchema):
    """One chat message; ``content`` is a string, a list of parts, or null."""

    role = fields.String(
        required=True,
        validate=OneOf(
            ("system", "developer", "user", "assistant", "tool", "function")
        ),
    )
    content = fields.Raw(load_default=None, allow_none=True)

    @validates("content")
    def _content_shape(self, value: Any, **_: Any) -> None:
        if value is None or isinstance(value, str):
            return
        if not isinstance(value, list) or not all(
            isinstance(part, dict) and isinstance(part.get("type"), str)
            for part in value
        ):
            raise ValidationError("Must be a string or a list of content parts.")


class StreamOptionsSchema(RequestSchema):
    include_usage = StrictBoolean(load_default=False)


class ChatCompletionSchema(RequestSchema):
    """``POST /v1/chat/completions``; ``n`` is the number of images."""

    model = Name(load_default=None)
    messages = fields.List(
        fields.Nested(MessageSchema), required=True, validate=Length(min=1)
    )
    stream = StrictBoolean(load_default=False, allow_none=True)
    n = fields.Integer(strict=True, load_default=None, validate=Range(1, 8))
    negative_prompt = PromptText(load_default=None)  # extension, as in images
    user = fields.String(load_default=None, validate=Length(max=MAX_USER_LENGTH))
    callback_url = CallbackURL(load_default=None)
    # extension: the stream's first chunk says "generating…" (CHAT_PROGRESS_TEXT)
    progress = StrictBoolean(load_default=None, allow_none=True)
    stream_options = fields.Nested(
        StreamOptionsSchema, load_default=None, allow_none=True
    )


chat_completion_schema = ChatCompletionSchema()


class TokenCheckSchema(RequestSchema):
    """``POST /token/check``: one session id (the ``sessionid`` cookie value)."""

    token = fields.String(required=True)

    @validates("token")
    def _session_id(self, value: str, **_: Any) -> None:
        # fullmatch: "X\n" must not pass (a "$" pattern accepts a trailing newline)
        if not SESSION_ID.fullmatch(value):
            raise ValidationError("Must be a Jimeng 'sessionid' cookie value.")


token_check_schema = TokenCheckSchema()
