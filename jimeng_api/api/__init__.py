"""HTTP routes: one blueprint per resource."""

from . import health, images, models

blueprints = (health.bp, images.bp, models.bp)
