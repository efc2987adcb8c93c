"""HTTP routes: one blueprint per resource."""

from . import chat, docs, health, images, models, observability, tasks, token

blueprints = (
    health.bp,
    images.bp,
    chat.bp,
    tasks.bp,
    models.bp,
    observability.bp,
    token.bp,
    docs.bp,
)
