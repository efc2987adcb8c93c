"""Response headers that keep the pages of this service out of other sites' frames.

``/`` (the playground) and ``/docs`` (Swagger UI) are HTML: without these headers a
hostile page could frame them and trick a user into clicking (clickjacking). The
headers are harmless on JSON, so every response gets them; a route that sets its
own Content-Security-Policy keeps it, with ``frame-ancestors`` added if missing.
"""

from __future__ import annotations

from flask import Flask, Response

FRAME_ANCESTORS = "frame-ancestors 'none'"


def add_security_headers(response: Response) -> Response:
    """Add X-Frame-Options, CSP frame-ancestors, nosniff and Referrer-Policy."""
    headers = response.headers
    headers.setdefault("X-Frame-Options", "DENY")
    policy = headers.get("Content-Security-Policy", "").strip().rstrip(";")
    if not policy:
        headers["Content-Security-Policy"] = FRAME_ANCESTORS
    elif "frame-ancestors" not in policy:
        headers["Content-Security-Policy"] = f"{policy}; {FRAME_ANCESTORS}"
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def init_security_headers(app: Flask) -> None:
    """Register ``add_security_headers`` on *app* (call once, in create_app)."""
    app.after_request(add_security_headers)
