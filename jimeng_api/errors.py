"""Errors we report to callers, and the one function that renders them.

APIError                          500  server_error
├── InvalidRequestError           400  invalid_request_error
│   ├── ContentFilteredError      400    code=content_policy_violation  (no retry)
│   └── ResponseTooLargeError     400    code=response_too_large        (no retry)
├── AuthenticationError           401  invalid_request_error, code=invalid_api_key
│   └── SessionExpiredError       401    code=session_expired          (no retry)
├── PermissionDeniedError         403  code=risk_control                (no retry)
├── NotFoundError                 404  code=not_found / model_not_found
├── MethodNotAllowedError         405
├── PayloadTooLargeError          413
├── RateLimitError                429  code=rate_limit_exceeded
│   └── InsufficientQuotaError    429  insufficient_quota               (no retry)
├── UpstreamError                 502  upstream_error
│   ├── GenerationFailedError     502    code=generation_failed         (no retry)
│   └── UpstreamTimeoutError      504    code=timeout
└── ServiceUnavailableError       503  code=service_unavailable

``retryable`` becomes the ``x-should-retry`` header that the openai SDKs obey. Every
error raised after a generation was accepted upstream is made non-retryable, since
a client retry would submit (and pay for) the generation again.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class APIError(Exception):
    """Base class; subclasses change only the class attributes."""

    status_code = 500
    type = "server_error"
    code: str | None = None
    retryable: bool | None = None  # None: let the client decide by status
    message = "The server had an error while processing your request."

    def __init__(
        self,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.param = param
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """Return the OpenAI error object."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(APIError):
    status_code = 400
    type = "invalid_request_error"
    code = "invalid_request"
    message = "The request is invalid."


class ContentFilteredError(InvalidRequestError):
    code = "content_policy_violation"
    retryable = False
    message = "The prompt was rejected by Jimeng's content filter."


class ResponseTooLargeError(InvalidRequestError):
    """The answer would exceed a server-side cap (e.g. IMAGE_RESPONSE_MAX_BYTES)."""

    code = "response_too_large"
    retryable = False
    message = "The response would be too large."


class AuthenticationError(APIError):
    status_code = 401
    type = "invalid_request_error"
    code = "invalid_api_key"
    retryable = False
    message = "Missing or invalid Authorization header (use 'Bearer <sessionid>')."


class SessionExpiredError(AuthenticationError):
    code = "session_expired"
    message = "The Jimeng session id is invalid or has expired; log in again."


class PermissionDeniedError(APIError):
    status_code = 403
    type = "permission_error"
    code = "risk_control"
    retryable = False
    message = "Jimeng refused the request for this account (risk control)."


class NotFoundError(APIError):
    status_code = 404
    type = "invalid_request_error"
    code = "not_found"
    message = "Not found."


class MethodNotAllowedError(APIError):
    status_code = 405
    type = "invalid_request_error"
    code = "method_not_allowed"
    message = "Method not allowed."


class PayloadTooLargeError(APIError):
    status_code = 413
    type = "invalid_request_error"
    code = "request_too_large"
    retryable = False
    message = "The request body is too large."


class UnprocessableEntityError(APIError):
    status_code = 422
    type = "invalid_request_error"
    code = "unprocessable_entity"
    retryable = False
    message = "The request cannot be processed as sent."


class RateLimitError(APIError):
    status_code = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    message = "Too many concurrent generations for this account; try again shortly."


class InsufficientQuotaError(RateLimitError):
    type = "insufficient_quota"
    code = "insufficient_quota"
    retryable = False
    message = "The Jimeng account has no credits left."


class UpstreamError(APIError):
    status_code = 502
    type = "upstream_error"
    code = "upstream_error"
    message = "Jimeng returned an error."


class GenerationFailedError(UpstreamError):
    code = "generation_failed"
    retryable = False
    message = "Jimeng could not generate the image."


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    code = "timeout"
    message = "Jimeng did not answer in time."


class ServiceUnavailableError(APIError):
    status_code = 503
    type = "server_error"
    code = "service_unavailable"
    message = "The service is not available right now."


def error_response(exc: APIError) -> Response:
    """Render *exc* as an OpenAI error response (the only place that does)."""
    response = jsonify(exc.to_dict())
    response.status_code = exc.status_code
    response.headers.update(exc.headers)
    if exc.retryable is not None:
        response.headers["x-should-retry"] = "true" if exc.retryable else "false"
    return response


HTTP_ERRORS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
    429: RateLimitError,
}


def from_http_exception(exc: HTTPException) -> APIError:
    """Adapt a Werkzeug error (routing, 413, 500...) to our tree."""
    error_class = HTTP_ERRORS.get(exc.code or 500, APIError)
    if exc.code == 404:
        return NotFoundError(
            "Unknown route. Endpoints: POST /v1/chat/completions, "
            "POST /v1/images/generations, POST /v1/images/edits, POST /v1/videos, "
            "GET /v1/tasks, GET /v1/models, POST /token/check, POST /token/points, "
            "POST /token/receive, GET /ping, GET /health, GET /docs."
        )
    if exc.code == 405:
        allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or []))
        return MethodNotAllowedError(
            f"Method not allowed for this route (allowed: {allowed}).",
            headers={"Allow": allowed} if allowed else None,
        )
    if error_class is APIError:
        return APIError()  # never leak internals of a 5xx
    return error_class(exc.description or None)


def register_error_handlers(app: Flask) -> None:
    """Route every error, ours or Werkzeug's, through ``error_response``."""

    @app.errorhandler(APIError)
    def handle_api_error(exc: APIError) -> Response:
        if exc.status_code >= 500:
            log.warning("%s: %s", type(exc).__name__, exc.message)
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException) -> Response:
        return error_response(from_http_exception(exc))
