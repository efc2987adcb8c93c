"""OpenAI-compatible HTTP API in front of Jimeng (即梦) image generation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, request
from flask_cors import CORS

from config import Config, get_config, validate

from .api import blueprints
from .errors import PayloadTooLargeError, register_error_handlers
from .extensions import init_services
from .logs import init_request_logging

__version__ = "1.0.0"

CORS_SETTINGS = {
    "allow_headers": ["Authorization", "Content-Type", "X-Request-ID"],
    "expose_headers": ["X-Request-ID", "x-should-retry"],
    "methods": ["GET", "POST", "OPTIONS"],
}


def create_app(
    config_class: type[Config] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Flask:
    """Create and configure an instance of the application.

    :param config_class: a class from ``config.py``; default: by ``$JIMENG_ENV``.
    :param overrides: settings applied last, e.g. by tests.
    """
    app = Flask(__name__)
    app.config.from_object(config_class or get_config())
    app.config.update(overrides or {})
    validate(app.config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    CORS(
        app,
        origins=list(app.config["CORS_ORIGINS"]) or "*",
        max_age=app.config["CORS_MAX_AGE"],
        **CORS_SETTINGS,
    )
    init_request_logging(app)
    register_error_handlers(app)
    app.before_request(_refuse_oversized_body)
    init_services(app)
    for bp in blueprints:
        app.register_blueprint(bp)
    return app


def _refuse_oversized_body() -> None:
    """Answer 413 up front, also on routes that never read their body."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"The request body is larger than {limit} bytes.")
