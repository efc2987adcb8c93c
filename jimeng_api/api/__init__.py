"""HTTP routes: one blueprint per resource."""

from . import chat, health, images, models, observability

blueprints = (health.bp, images.bp, chat.bp, models.bp, observability.bp)
