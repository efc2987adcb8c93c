"""HTTP routes: one blueprint per resource."""

from . import health

blueprints = (health.bp,)
