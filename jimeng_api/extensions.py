"""Per-app service objects, kept in ``app.extensions`` (not module globals)."""

from __future__ import annotations

from flask import Flask, current_app

from .generation import Generator
from .pool import init_pool
from .upstream import JimengClient


def init_services(app: Flask) -> None:
    """Create the upstream client and the generation service for *app*."""
    generator = Generator(JimengClient(app.config), app.config)
    app.extensions["jimeng"] = generator
    init_pool(app, generator)  # pooled mode only


def get_generator() -> Generator:
    """Return the generation service of the current app."""
    return current_app.extensions["jimeng"]
