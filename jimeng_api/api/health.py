"""``GET /ping`` (health check) and ``GET /`` (the playground page)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

bp = Blueprint("health", __name__)

INDEX_HTML = (
    Path(__file__).parent.parent / "static" / "playground" / "index.html"
).read_bytes()


@bp.get("/ping")
def ping() -> Response:
    """Answer ``pong``: the process is up and serving."""
    return Response("pong", mimetype="text/plain")


@bp.get("/")
def index() -> Response:
    """Serve the playground page."""
    return Response(INDEX_HTML, mimetype="text/html")
