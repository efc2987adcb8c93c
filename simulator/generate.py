"""``aigc_draft/generate`` (§3.3, §5.1, §5.4; 2026 §3: 1310, 2061)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from .draft import DraftError, GenerateRequest, parse_generate
from .settings import SimSettings
from .state import SimState
from .timeline import Task
from .video import is_video_body
from .wire import Ctx, Reply

ITEM_ID_BASE = 7_593_924_000_000_000_000  # item ids: 19 digits like the real ones
CREDIT_STARLING_KEY = "web_dre_m10n_generate_popup_credit_ininsufficient_title"
PARALLEL_FAIL_CODE = "exceed_model_parallel_max"
PARALLEL_ERRMSG = "使用高峰期，暂时无法提交更多任务"


class GenerateRoutes:
    """Mixin of :class:`SimulatorApp` for the generate endpoint."""

    state: SimState
    settings: SimSettings
    reject: Callable[..., Reply]
    body_json: Callable[[Ctx], Any]
    generate_video: Callable[[Ctx, dict[str, Any]], Reply]

    def generate(self, ctx: Ctx) -> Reply:
        state, settings = self.state, self.settings
        body = self.body_json(ctx)
        if is_video_body(body):
            return self.generate_video(ctx, body)
        try:
            req = parse_generate(body, settings)
        except DraftError as exc:
            return self.reject(ctx, exc.ret, exc.errmsg, exc.reason)
        missing = [u for u in req.blend_uris if u not in state.committed_uris]
        if missing:
            return self.reject(ctx, "1000", "invalid parameter", f"unknown {missing}")
        cost = settings.generation_cost * (
            req.gen_count if settings.cost_per_image else 1
        )
        with state.lock:
            limit = settings.max_running_per_session
            if limit and state.running_tasks(ctx.session) >= limit:
                return self.parallel_limit(ctx, limit)
            account = state.account(ctx.session)
            if account.total < cost:
                return self.insufficient(ctx, account.total, cost)
            account.charge(cost)
            task = self.new_task(ctx.session, req, cost)
            state.add_task(task)
        if "null_aigc_data" in ctx.faults:
            state.count_fault("null_aigc_data")
            return Reply(data={"aigc_data": None})
        return Reply(
            data={"aigc_data": self.aigc_data(task), "forecast_generate_cost": cost}
        )

    def parallel_limit(self, ctx: Ctx, limit: int) -> Reply:
        """Too many unfinished tasks: not accepted, not charged (2026 §3)."""
        reason = f"{limit} unfinished tasks"
        if self.settings.parallel_limit_ret == "1010":
            return self.reject(ctx, "1010", "concurrency limit", reason)
        self.state.record_rejection(ctx.endpoint, "1310", reason)
        return Reply(
            "1310",
            PARALLEL_ERRMSG,
            {
                "aigc_data": None,
                "fail_code": PARALLEL_FAIL_CODE,
                "fail_starling_key": PARALLEL_FAIL_CODE,
                "fail_starling_message": PARALLEL_ERRMSG,
            },
        )

    def insufficient(self, ctx: Ctx, total: int, cost: int) -> Reply:
        reason = f"balance {total} < cost {cost}"
        if self.settings.legacy_credits:
            return self.reject(ctx, "5000", "积分不足", reason)
        self.state.record_rejection(ctx.endpoint, "1006", reason)
        return Reply(
            "1006",
            "积分不足",
            {
                "aigc_data": None,
                "fail_code": "1006",
                "fail_starling_key": CREDIT_STARLING_KEY,
                "fail_starling_message": "积分不足",
            },
        )

    def new_task(self, session: str, req: GenerateRequest, cost: int) -> Task:
        state = self.state
        words = [w.lower() for w in self.settings.blocked_words if w]
        blocked = any(w in req.prompt.lower() for w in words)
        history_id = state.new_id()
        first_item = ITEM_ID_BASE + int(history_id) * 100
        duration = state.planned_duration()
        wait, position, length = (0.0, 0, 0) if blocked else state.planned_queue()
        fate, stop_at, shift, fail_code = state.planned_fate(req.gen_count, blocked)
        return Task(
            history_id=history_id,
            submit_id=req.submit_id or str(uuid.uuid4()),
            session=session,
            model=req.model,
            prompt=req.prompt,
            width=req.width,
            height=req.height,
            gen_count=req.gen_count,
            created=state.clock.now(),
            duration=duration,
            blocked=blocked,
            item_ids=[str(first_item + i) for i in range(req.gen_count)],
            image_keys=[state.hex_token(32) for _ in range(req.gen_count)],
            queue_wait=wait,
            queue_position=position,
            queue_length=length,
            fate=fate,
            stop_at=stop_at,
            stall_shift=shift,
            fail_code=fail_code,
            final_without_items=state.chance(self.settings.final_without_items_rate),
            cost=cost,
        )

    def aigc_data(self, task: Task) -> dict[str, Any]:
        return {
            "generate_type": 12,
            "history_record_id": task.history_id,
            "origin_history_record_id": None,
            "created_time": round(task.created, 3),
            "item_list": [],
            "origin_item_list": [],
            "task": {
                "task_id": task.history_id,
                "submit_id": task.submit_id,
                "aid": 0,
                "status": 20,
                "finish_time": 0,
                "history_id": task.history_id,
                "task_payload": None,
                "original_input": None,
                "req_first_frame_image": None,
            },
        }
