"""``get_history_by_ids`` (§3.4; 2026 §4): records, items, batch polls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request

from .settings import KNOWN_MODELS, SimSettings
from .state import SimState
from .timeline import Task
from .uploads import SERVICE_ID
from .wire import Ctx, Reply


class HistoryRoutes:
    """Mixin of :class:`SimulatorApp` for the history endpoint."""

    state: SimState
    settings: SimSettings
    reject: Callable[..., Reply]
    body_json: Callable[[Ctx], Any]
    image_url: Callable[[Request, str, str, float], str]
    image_sizes: Callable[[Task], tuple[tuple[int, int], tuple[int, int]]]
    video_item: Callable[[Ctx, Task, float], dict[str, Any]]

    def history(self, ctx: Ctx) -> Reply:
        """One call, any mix of ``history_ids`` and ``submit_ids`` (one poll)."""
        with self.state.lock:
            self.state.history_calls_by_session[ctx.session] += 1
        body = self.body_json(ctx)
        if not isinstance(body, dict):
            return self.reject(ctx, "1002", "common error", "body is not an object")
        wanted: list[tuple[str, bool]] = []
        for key, by_submit in (("history_ids", False), ("submit_ids", True)):
            ids = body.get(key)
            if ids is None:
                continue
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return self.reject(ctx, "1000", "invalid parameter", f"{key} not str[]")
            wanted += [(i, by_submit) for i in ids]
        if not wanted:
            return self.reject(ctx, "1000", "invalid parameter", "no ids")
        with self.state.lock:
            self.state.polls += 1
        now = self.state.clock.now()
        records: dict[str, dict[str, Any]] = {}  # one record per task and call
        data = {}
        for key, by_submit in wanted:
            task = self.state.find_task(key, by_submit)
            if task is None or task.session != ctx.session:
                continue
            if task.history_id not in records:
                records[task.history_id] = self.record(ctx, task, now)
            data[key] = records[task.history_id]
        return Reply(data=data)

    def record(self, ctx: Ctx, task: Task, now: float) -> dict[str, Any]:
        status, done = task.progress(now)
        final = status in (30, 50)
        missing = "missing_item_list" in ctx.faults
        with self.state.lock:  # the first poll that sees 50 may lack item_list
            first_final = final and task.final_seen_at is None
            withhold = status == 50 and first_final and task.final_without_items
            self.state.observe_poll(task, now, final, not (withhold or missing))
        status_value: Any = status
        if "string_status" in ctx.faults:
            self.state.count_fault("string_status")
            status_value = str(status)
        rec: dict[str, Any] = {
            "generate_type": 12,
            "history_record_id": task.history_id,
            "origin_history_record_id": None,
            "created_time": round(task.created, 3),
            "status": status_value,
            "fail_code": task.fail_code if status == 30 else "",
            "fail_starling_key": "",
            "fail_starling_message": "",
            "total_image_count": task.gen_count,
            "finished_image_count": done,
            "model_info": {
                "model_req_key": task.model,
                "model_name": KNOWN_MODELS.get(task.model, task.model),
            },
            "task": {
                "task_id": task.history_id,
                "submit_id": task.submit_id,
                "aid": 0,
                "status": status_value,
                "finish_time": int(task.finished_at) if final else 0,
                "history_id": task.history_id,
            },
            "item_list": [self.item(ctx, task, i, now) for i in range(done)],
            "origin_item_list": [],
        }
        if task.queued(now):
            rec["queue_info"] = task.queue_info(now)
        if withhold:
            del rec["item_list"]
        elif missing:
            self.state.count_fault("missing_item_list")
            del rec["item_list"]
        return rec

    def item(self, ctx: Ctx, task: Task, index: int, now: float) -> dict[str, Any]:
        if task.kind == "video":
            return self.video_item(ctx, task, now)
        url = self.image_url(ctx.request, task.history_id, f"{index}.png", now)
        cover = self.image_url(ctx.request, task.history_id, f"{index}-cover.png", now)
        item_id = task.item_ids[index]
        (width, height), _ = self.image_sizes(task)
        return {
            "common_attr": {
                "id": item_id,
                "effect_id": item_id,
                "effect_type": 9,
                "title": "",
                "description": task.prompt,
                "cover_url": cover,
                "cover_url_map": {"2048": cover},
                "item_urls": [url],
            },
            "image": {
                "format": "png",
                "large_images": [
                    {
                        "image_uri": f"tos-cn-i-{SERVICE_ID}/{task.image_keys[index]}",
                        "image_url": url,
                        "width": width,
                        "height": height,
                        "format": "png",
                    }
                ],
            },
            "extra": {"credits_consume": task.credits_per_item()[index]},
        }
