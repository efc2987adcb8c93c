"""HTTP routes: one blueprint per resource."""

from . import chat, docs, health, images, models, observability, token

blueprints = (
    health.bp,
    images.bp,
    chat.bp,
    models.bp,
    observability.bp,
    token.bp,
    docs.bp,
)
