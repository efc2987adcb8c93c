"""OpenAI-compatible HTTP API in front of Jimeng (即梦) image generation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from flask_cors import CORS

from config import Config, get_config, validate

from .api import blueprints
from .errors import (
    PayloadTooLargeError,
    ServiceUnavailableError,
    error_response,
    register_error_handlers,
)
from .extensions import init_services
from .logs import init_request_logging
from .security import init_security_headers
from .sizes import size_table
from .store import StoreError

__version__ = "1.0.0"

CORS_SETTINGS = {
    # "*": any requested header, so the official SDKs' X-Stainless-* and
    # Idempotency-Key headers pass the preflight (browser pages on any origin)
    "allow_headers": "*",
    "expose_headers": [
        "X-Request-ID",
        "x-should-retry",
        "X-Task-Id",
        "X-Jimeng-Partial",
        "X-Jimeng-Notice",
        "Location",
        "Retry-After",
    ],
    "methods": ["GET", "POST", "DELETE", "OPTIONS"],
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
    size_table(app.config["JIMENG_SIZE_TABLE"])  # its ratios are Jimeng's
    # relative to where the server was started, whichever module opens it
    app.config["DATA_DIR"] = os.path.abspath(app.config["DATA_DIR"])
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    CORS(
        app,
        origins=list(app.config["CORS_ORIGINS"]) or "*",
        max_age=app.config["CORS_MAX_AGE"],
        **CORS_SETTINGS,
    )
    init_request_logging(app)
    init_security_headers(app)
    register_error_handlers(app)
    app.before_request(_refuse_oversized_body)
    init_services(app)
    app.register_error_handler(StoreError, _store_unavailable)
    for bp in blueprints:
        app.register_blueprint(bp)
    return app


def _store_unavailable(exc: StoreError) -> Response:
    """The store is down: 503, never a 500, and nothing was submitted."""
    current_app.logger.warning("store unavailable: %s", exc)
    return error_response(
        ServiceUnavailableError(
            "The job store is unavailable (check STORE_URL); nothing was submitted.",
            code="store_unavailable",
        )
    )


def _refuse_oversized_body() -> None:
    """Answer 413 up front, also on routes that never read their body."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"The request body is larger than {limit} bytes.")
