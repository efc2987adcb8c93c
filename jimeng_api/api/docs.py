"""``GET /openapi.json`` (the API description) and ``GET /docs`` (Swagger UI).

Swagger UI's files come from the pinned ``flask-swagger-ui`` package and are served
by us: the page loads nothing from another origin.
"""

from __future__ import annotations

import json
from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Response, abort, current_app, send_from_directory, url_for
from markupsafe import Markup

from ..openapi import get_spec

bp = Blueprint("docs", __name__)

SWAGGER_UI_DIR = Path(flask_swagger_ui.__file__).parent / "dist"
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
ASSET_MAX_AGE = 86400  # the files change only with the pinned package

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>jimeng-api: API reference</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
  <style>body {{ margin: 0; background: #fafafa; }}</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{js}"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: {spec_url},
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """Describe this API (OpenAPI 3.1)."""
    body = json.dumps(get_spec(current_app), ensure_ascii=False, indent=1)
    return Response(body, mimetype="application/json")


@bp.get("/docs")
def swagger_ui() -> Response:
    """Browse the API reference (Swagger UI)."""
    asset = lambda name: url_for("docs.swagger_asset", filename=name)  # noqa: E731
    page = PAGE.format(
        css=Markup.escape(asset("swagger-ui.css")),
        icon=Markup.escape(asset("favicon-32x32.png")),
        js=Markup.escape(asset("swagger-ui-bundle.js")),
        spec_url=json.dumps(url_for("docs.openapi_document")),
    )
    return Response(page, mimetype="text/html")


@bp.get("/docs/static/<path:filename>")
def swagger_asset(filename: str) -> Response:
    """Serve one of Swagger UI's files."""
    if filename not in ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_UI_DIR, filename, max_age=ASSET_MAX_AGE)
