"""Prometheus metrics; aggregated across gunicorn workers in multiprocess mode.

gunicorn.conf.py points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before
the workers start, so every worker writes its samples there and ``GET /metrics``
(served by any worker) reports the sum.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "jimeng_api_requests_total", "HTTP requests served", ["route", "method", "status"]
)
GENERATION_SECONDS = Histogram(
    "jimeng_api_generation_seconds",
    "Time from submit to the last image, by model and outcome",
    ["model", "outcome"],
    buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600),
)
UPSTREAM_CALLS = Counter(
    "jimeng_api_upstream_calls_total",
    "Calls to Jimeng by endpoint and result (ret code, http_5xx, not_json...)",
    ["endpoint", "result"],
)
GENERATION_FAILURES = Counter(
    "jimeng_api_generation_failures_total",
    "Generations that failed, by reason",
    ["reason"],
)
IN_FLIGHT = Gauge(
    "jimeng_api_generations_in_flight",
    "Generations submitted and not finished",
    multiprocess_mode="livesum",
)
SSE_OPEN = Gauge(
    "jimeng_api_sse_streams_open", "Open SSE streams", multiprocess_mode="livesum"
)
POOL_SESSIONS = Gauge(
    "jimeng_api_pool_sessions",
    "Pooled sessions by state (pooled mode only)",
    ["state"],
    multiprocess_mode="livemax",
)


def upstream_call(endpoint: str, result: str) -> None:
    """Count one call to Jimeng."""
    UPSTREAM_CALLS.labels(endpoint, result).inc()


#: the HTTP methods that get their own label; anything else is "other", so a
#: client inventing methods cannot create new series (label cardinality)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_labels(route: str, method: str, status: int) -> tuple[str, str, str]:
    """Normalise the labels of one request to a fixed set.

    *route* is the matched URL rule (a fixed set) or ``"unmatched"``; *method* is
    one of METHODS or ``"other"``; *status* is a 3-digit code or ``"other"``."""
    method = method.upper() if method.upper() in METHODS else "other"
    code = str(status) if isinstance(status, int) and 100 <= status <= 599 else "other"
    return route or "unmatched", method, code


def request_served(route: str, method: str, status: int) -> None:
    """Count one HTTP request (labels normalised by ``request_labels``)."""
    REQUESTS.labels(*request_labels(route, method, status)).inc()


def generation_failed(reason: str) -> None:
    """Count a failed generation (content_filtered, insufficient_quota, ...)."""
    GENERATION_FAILURES.labels(reason).inc()


@contextmanager
def tracking(gauge: Gauge) -> Iterator[None]:
    """Hold *gauge* one higher for the duration of the block."""
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


def pool_health(healthy: int, cooling: int) -> None:
    """Publish how many pooled sessions can serve right now."""
    POOL_SESSIONS.labels("healthy").set(healthy)
    POOL_SESSIONS.labels("cooling").set(cooling)


def exposition() -> tuple[bytes, str]:
    """Return the metrics page and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


JOBS = Gauge(
    "jimeng_api_jobs",
    "Jobs in the store by status (read from the store at scrape time)",
    ["status"],
    multiprocess_mode="mostrecent",
)
JOBS_LEASED = Gauge(
    "jimeng_api_jobs_leased",
    "Unfinished jobs this worker polls or submits",
    multiprocess_mode="livesum",
)
JOB_EVENTS = Counter(
    "jimeng_api_job_events_total", "Jobs created and finished", ["kind", "event"]
)
SESSION_FILE_OK = Gauge(
    "jimeng_api_session_file_ok",
    "1 if JIMENG_SESSION_FILE was read at the last try, 0 if the last good list "
    "is in use",
    multiprocess_mode="min",
)


def job_created(kind: str) -> None:
    JOB_EVENTS.labels(kind, "created").inc()


def job_finished(kind: str, status: str) -> None:
    JOB_EVENTS.labels(kind, status).inc()


def jobs_by_status(counts: dict[str, int]) -> None:
    """Publish the store's job counts (called when /metrics is scraped)."""
    for status in ("queued", "in_progress", "completed", "failed", "cancelled"):
        JOBS.labels(status).set(counts.get(status, 0))


def jobs_leased(count: int) -> None:
    JOBS_LEASED.set(count)


def session_file_ok(ok: bool) -> None:
    SESSION_FILE_OK.set(1 if ok else 0)


def generation_ended(job: dict) -> None:
    """Count a finished job: its duration by model and outcome, and why it
    failed (content_filtered, insufficient_quota, the error code...)."""
    outcome = "ok" if job["status"] == "completed" else "error"
    model = (job.get("spec") or {}).get("model") or "unknown"
    if job.get("completed_at") and job.get("created_at"):
        seconds = max(job["completed_at"] - job["created_at"], 0.0)
        GENERATION_SECONDS.labels(model, outcome).observe(seconds)
    if job["status"] == "failed":
        error = job.get("error") or {}
        reason = error.get("code") or error.get("type") or "unknown"
        if reason == "content_policy_violation":
            reason = "content_filtered"
        generation_failed(str(reason)[:40])
