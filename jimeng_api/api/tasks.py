"""``/v1/tasks``: the caller's generations as tasks (created with ``Prefer:
respond-async``, or by any generation request). Another caller's task is as
unknown as a missing one (404, no existence oracle)."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from ..auth import caller
from ..errors import InvalidRequestError
from ..extensions import get_jobs
from ..tasks import task_object

bp = Blueprint("tasks", __name__, url_prefix="/v1/tasks")

MAX_LIMIT = 100


@bp.get("/<task_id>")
def retrieve_task(task_id: str) -> ResponseReturnValue:
    """Return one task: its status, progress and, once completed, its result."""
    return task_object(get_jobs().get_for(caller(), task_id))


@bp.get("")
def list_tasks() -> ResponseReturnValue:
    """The caller's tasks, newest first, paginated like OpenAI lists."""
    who = caller()
    limit = _limit(request.args.get("limit", "20"))
    after = request.args.get("after") or None
    jobs, has_more = get_jobs().list_for(who, limit, after)
    data = [task_object(job) for job in jobs]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


@bp.delete("/<task_id>")
def delete_task(task_id: str) -> ResponseReturnValue:
    """Stop polling and forget the task (Jimeng is not asked to cancel it)."""
    get_jobs().delete_for(caller(), task_id)
    return {"id": task_id, "object": "task.deleted", "deleted": True}


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequestError(
            f"limit must be an integer from 1 to {MAX_LIMIT}.", param="limit"
        )
    return int(raw)
