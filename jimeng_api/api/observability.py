"""``GET /metrics``: Prometheus metrics, optionally behind ``METRICS_TOKEN``."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

from .. import metrics
from ..errors import AuthenticationError
from ..extensions import get_store
from ..store import StoreError

bp = Blueprint("observability", __name__)


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """Expose the metrics of every worker in Prometheus' text format."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise AuthenticationError("Send 'Authorization: Bearer <METRICS_TOKEN>'.")
    try:
        metrics.jobs_by_status(get_store().count_jobs())
    except StoreError:
        pass  # the page still answers; the job gauges keep their last values
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
