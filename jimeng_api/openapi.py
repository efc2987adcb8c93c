"""The OpenAPI 3.1 document, generated from the URL map and the marshmallow schemas.

Request bodies are the schemas the views validate with (``schemas.py``); the
response schemas (``openapi_schemas.py``) exist only to describe what the views
return. ``openapi_operations.OPERATIONS`` says, per endpoint, which of them
apply; a route missing from it still appears in the document (with a generic
response), and ``tests/test_openapi.py`` fails until it is described.
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from werkzeug.routing import Rule

from .openapi_operations import (
    COMPONENTS,
    METRICS_AUTH,
    OPERATIONS,
    SESSION_AUTH,
    Operation,
)
from .openapi_schemas import ErrorResponseSchema

OPENAPI_VERSION = "3.1.0"
HIDDEN_ENDPOINTS = frozenset({"static"})
HIDDEN_METHODS = frozenset({"HEAD", "OPTIONS"})


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
