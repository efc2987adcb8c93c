"""The public shape of a job: the task object of ``/v1/tasks`` and webhooks."""

from __future__ import annotations

from typing import Any

PUBLIC_PROGRESS = ("images", "expected", "stage", "queue_position", "queue_length")


def task_object(job: dict[str, Any]) -> dict[str, Any]:
    """``{"id", "object": "task", "kind", "status", "progress", "created_at",
    "completed_at", "result", "error"}``; ``result`` is exactly the body the
    synchronous call returns."""
    progress = job.get("progress") or {}
    error = job.get("error")
    return {
        "id": job["id"],
        "object": "task",
        "kind": job["kind"],
        "status": job["status"],
        "progress": {k: progress[k] for k in PUBLIC_PROGRESS if k in progress},
        "partial": job.get("partial"),
        "created_at": int(job["created_at"]),
        "completed_at": int(job["completed_at"]) if job.get("completed_at") else None,
        "result": job.get("result"),
        "error": (
            {k: error.get(k) for k in ("message", "type", "param", "code")}
            if error
            else None
        ),
    }
