"""``GET /ping`` (liveness), ``GET /health`` (readiness: the store, the session
file) and ``GET /`` (the playground page)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app
from flask.typing import ResponseReturnValue

from ..extensions import get_roster, get_store
from ..store import StoreError

bp = Blueprint("health", __name__)

INDEX_HTML = (
    Path(__file__).parent.parent / "static" / "playground" / "index.html"
).read_bytes()


@bp.get("/ping")
def ping() -> Response:
    """Answer ``pong``: the process is up and serving."""
    return Response("pong", mimetype="text/plain")


@bp.get("/health")
def health() -> ResponseReturnValue:
    """Report what the service depends on; 503 while the store is unusable.

    A session file that could not be reread is reported (``degraded``) but
    keeps the service up: the last good list stays in use."""
    checks: dict[str, str] = {}
    try:
        get_store().ping()
        checks["store"] = "ok"
    except StoreError:
        checks["store"] = "unavailable"
    roster = get_roster()
    if roster is not None and roster.path:
        checks["session_file"] = (
            "ok" if roster.file_ok else "unreadable (last good list in use)"
        )
    status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
    code = 503 if checks["store"] != "ok" else 200
    return {"status": status, "checks": checks}, code


@bp.get("/version")
def version() -> ResponseReturnValue:
    """The running version, and whether the upstream is the offline simulator."""
    from .. import __version__  # jimeng_api/__init__ imports this module first

    return {
        "object": "version",
        "version": __version__,
        "demo": bool(current_app.config["DEMO_MODE"]),
    }


@bp.get("/")
def index() -> Response:
    """Serve the playground page."""
    return Response(INDEX_HTML, mimetype="text/html")
