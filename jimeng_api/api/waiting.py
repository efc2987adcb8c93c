"""How a generation endpoint answers: at once with a task (``Prefer:
respond-async``, RFC 7240) or after waiting on its job, and how a finished
job's error becomes an HTTP error again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from flask import current_app, request
from flask.typing import ResponseReturnValue

from ..auth import caller
from ..errors import APIError, InvalidRequestError
from ..extensions import get_generations, get_jobs
from ..jobs import Caller, body_hash
from ..tasks import task_object

MAX_IDEMPOTENCY_KEY = 256


def wants_async() -> bool:
    prefer = request.headers.get("Prefer", "")
    return any(p.strip().lower() == "respond-async" for p in prefer.split(","))


def request_digest() -> str:
    """What makes two requests the same request for ``Idempotency-Key``: the
    JSON body's content (not its spacing or key order), a multipart body's
    fields and files (its boundary differs on each retry), else the bytes."""
    if request.mimetype == "multipart/form-data":
        digest = hashlib.sha256()
        for name, value in sorted(request.form.items(multi=True)):
            digest.update(f"{name}\0{value}\0".encode())
        for name, upload in sorted(request.files.items(multi=True), key=lambda i: i[0]):
            digest.update(f"{name}\0".encode() + hashlib.sha256(upload.read()).digest())
            upload.seek(0)
        return digest.hexdigest()
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except ValueError:
        return body_hash(raw)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return body_hash(canonical.encode())


def idempotency(digest: str | None = None) -> tuple[str, str] | None:
    """``(Idempotency-Key, the request's digest)`` when the header is sent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidRequestError(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters.",
            param="Idempotency-Key",
        )
    return key, digest or request_digest()


def start(
    who: Caller, kind: str, spec: dict[str, Any], callback_url: str | None = None
) -> dict[str, Any]:
    return get_generations().start(
        who, kind, spec, idempotency=idempotency(), callback_url=callback_url
    )


def accepted(job: dict[str, Any]) -> ResponseReturnValue:
    """``202 Accepted`` with the task and where to find it."""
    headers = {"Location": f"/v1/tasks/{job['id']}", "X-Task-Id": job["id"]}
    return task_object(job), 202, headers


def job_error(job: dict[str, Any]) -> APIError:
    """Rebuild the error a failed job stored (status, code, retry advice)."""
    stored = job.get("error") or {}
    error = APIError(stored.get("message"), param=stored.get("param"))
    error.status_code = int(stored.get("status") or 502)
    error.type = stored.get("type") or "upstream_error"
    error.code = stored.get("code")
    error.retryable = stored.get("retryable")
    error.headers = {"X-Task-Id": job["id"], **(stored.get("headers") or {})}
    return error


def wait(job: dict[str, Any], tick: float | None = None) -> Iterator[dict | None]:
    """Wait on the job (as long as ``SYNC_WAIT_TIMEOUT``); see ``Jobs.wait``."""
    timeout = current_app.config["SYNC_WAIT_TIMEOUT"]
    return get_jobs().wait(job, timeout, tick)


def finished(job: dict[str, Any]) -> dict[str, Any]:
    """Wait for the end of the job and return it; raise its error if it failed."""
    for latest in wait(job):
        if latest is not None:
            job = latest
    if job["status"] != "completed":
        raise job_error(job)
    return job


def result_headers(job: dict[str, Any]) -> dict[str, str]:
    headers = {"X-Task-Id": job["id"]}
    if job.get("partial"):
        headers["X-Jimeng-Partial"] = job["partial"]
    if job.get("notice"):  # e.g. b64_json images delivered as URLs
        headers["X-Jimeng-Notice"] = job["notice"].encode("ascii", "replace").decode()
    return headers


def respond(who: Caller, kind: str, spec: dict[str, Any], callback: str | None):
    """Start the job; answer 202 (async) or its result (sync)."""
    job = start(who, kind, spec, callback)
    if job["status"] == "failed":
        raise job_error(job)
    if wants_async():
        return accepted(job)
    job = finished(job)
    return job["result"], 200, result_headers(job)


__all__ = ["caller", "respond", "wait", "job_error", "accepted", "start"]
