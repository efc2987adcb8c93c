"""Per-app service objects, kept in ``app.extensions`` (not module globals)."""

from __future__ import annotations

from flask import Flask, current_app

from .generation import Generator
from .upstream import JimengClient


def init_services(app: Flask) -> None:
    """Create the upstream client and the generation service for *app*."""
    app.extensions["jimeng"] = Generator(JimengClient(app.config), app.config)


def get_generator() -> Generator:
    """Return the generation service of the current app."""
    return current_app.extensions["jimeng"]
