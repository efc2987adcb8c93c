"""HTTP routes: one blueprint per resource."""

from . import (
    chat,
    docs,
    edits,
    health,
    images,
    models,
    observability,
    tasks,
    token,
    videos,
)

blueprints = (
    health.bp,
    images.bp,
    edits.bp,
    chat.bp,
    videos.bp,
    tasks.bp,
    models.bp,
    observability.bp,
    token.bp,
    docs.bp,
)
