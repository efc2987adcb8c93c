"""Video on the simulated site (protocol doc §6, protocol-2026-12 §5).

* ``aigc_draft/generate`` with a ``video_base_component`` draft: checked in the
  order of the image path (body → 1002, a retired ``root_model`` → 2061, then
  risk control for ``video_shark_models`` without ``a_bogus`` → 4013, then the
  draft → 1000, the per-account limit → 1310, credits → 1006), then a task of
  its own timeline: status 20 (with ``queue_info`` while queued) for
  ``video_task_seconds``, then 50 with one video item.
* Video credits: a video costs ``video_cost`` credits, paid from purchased and
  VIP credits only unless ``video_gift_spendable`` (free gift credits may not
  pay for video, §6.2: ``ret 1006`` "no relevant benefits").
* ``get_local_item_list``: the download file of the session's video items; an
  account with VIP credits gets the HQ file (``video_model.video_list`` with a
  base64 ``main_url`` and the transcoded origin), others the play file.
* ``GET /vid/<history_id>/<play|hq>.mp4?x-expires&x-signature``: a small valid
  MP4 (``mp4.py``) of the task's duration and aspect ratio, signed and expiring
  like the images; ``Range`` requests are answered with 206.
"""

from __future__ import annotations

import base64
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from .draft import RETIRED_ERRMSG
from .images import MIN_SIDE, served_size
from .mp4 import render_mp4
from .settings import SimSettings
from .state import SimState
from .strict import RISK_ERRMSG, RISK_STARLING_KEY
from .timeline import Task
from .wire import Ctx, Reply

#: video model keys the simulated site serves (protocol-2026-12 §5)
KNOWN_VIDEO_MODELS: dict[str, str] = {
    "dreamina_seedance_45_pro": "Seedance 2.5",
    "dreamina_seedance_45_pro_draft": "Seedance 2.5 Draft",
    "dreamina_seedance_40_pro": "Seedance 2.0",
    "dreamina_seedance_40": "Seedance 2.0 Fast",
    "dreamina_seedance_40_mini": "Seedance 2.0 Mini",
    "dreamina_seedance_40_pro_vision": "Seedance 2.0 VIP",
    "dreamina_seedance_40_vision": "Seedance 2.0 Fast VIP",
    "dreamina_ic_generate_video_model_vgfm_3.0_pro": "Seedance 1.0 Pro",
    "dreamina_ic_generate_video_model_vgfm_3.0_fast": "Seedance 1.0 Fast",
    "dreamina_minimax_h3": "MiniMax Hailuo H3",
}
VIDEO_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
VIDEO_RESOLUTIONS = ("480p", "720p", "768p", "1080p")
NO_BENEFIT_ERRMSG = "Not enough credits left or no relevant benefits"
CREDIT_STARLING_KEY = "web_dre_m10n_generate_popup_credit_ininsufficient_title"
VIDEO_SIDE = 64  # long side of the served play file; the HQ file is twice that


class VideoDraftError(Exception):
    def __init__(self, ret: str, errmsg: str, reason: str) -> None:
        super().__init__(reason)
        self.ret, self.errmsg, self.reason = ret, errmsg, reason


@dataclass
class VideoRequest:
    submit_id: str | None
    model: str
    prompt: str
    duration_ms: int
    ratio: str
    resolution: str | None
    frame_uris: list[str]


def is_video_body(body: Any) -> bool:
    """Whether a generate body carries a video draft (read loosely: the strict
    checks follow in ``parse_video``)."""
    if not isinstance(body, dict) or not isinstance(body.get("draft_content"), str):
        return False
    return '"video_base_component"' in body["draft_content"]


def _invalid(reason: str) -> VideoDraftError:
    return VideoDraftError("1000", "invalid parameter", reason)


def _obj(parent: Any, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, dict):
        raise _invalid(f"{key} missing or not an object")
    return value


def _json(body: dict[str, Any], key: str) -> Any:
    raw = body.get(key)
    if not isinstance(raw, str):
        raise VideoDraftError("1002", "common error", f"{key} must be a JSON string")
    try:
        return json.loads(raw)
    except ValueError:
        raise VideoDraftError("1002", "common error", f"{key} is not JSON") from None


def parse_video(body: dict[str, Any], settings: SimSettings) -> VideoRequest:
    """Validate a video generate body (raises VideoDraftError)."""
    draft = _json(body, "draft_content")
    if body.get("metrics_extra") is not None:
        _json(body, "metrics_extra")
    extend = _obj(body, "extend")
    root_model = extend.get("root_model")
    if isinstance(root_model, str) and root_model in settings.retired_models:
        raise VideoDraftError("2061", RETIRED_ERRMSG, f"retired model {root_model!r}")
    components = draft.get("component_list") if isinstance(draft, dict) else None
    if not isinstance(components, list) or not components:
        raise _invalid("draft.component_list missing")
    component = components[0]
    if not isinstance(component, dict) or component.get("generate_type") != "gen_video":
        raise _invalid("video component without generate_type gen_video")
    params = _obj(
        _obj(_obj(component, "abilities"), "gen_video"), "text_to_video_params"
    )
    if params.get("model_req_key") != root_model:
        raise _invalid("root_model != model_req_key")
    if root_model not in KNOWN_VIDEO_MODELS:
        raise _invalid(f"unknown video model key {root_model!r}")
    if "m_video_commerce_info" in extend and not isinstance(
        _obj(extend, "m_video_commerce_info").get("benefit_type"), str
    ):
        raise _invalid("m_video_commerce_info.benefit_type missing")
    if params.get("video_aspect_ratio") not in VIDEO_RATIOS:
        raise _invalid(f"bad video_aspect_ratio {params.get('video_aspect_ratio')!r}")
    inputs = params.get("video_gen_inputs")
    if (
        not isinstance(inputs, list)
        or len(inputs) != 1
        or not isinstance(inputs[0], dict)
    ):
        raise _invalid("video_gen_inputs must hold one object")
    one = inputs[0]
    duration = one.get("duration_ms")
    if not isinstance(duration, int) or isinstance(duration, bool):
        raise _invalid("duration_ms must be an int")
    if not 1000 <= duration <= 15000:
        raise _invalid("duration_ms must be within 1000..15000")
    if not isinstance(one.get("prompt"), str):
        raise _invalid("prompt must be a string")
    resolution = one.get("resolution")
    if resolution is not None and resolution not in VIDEO_RESOLUTIONS:
        raise _invalid(f"bad resolution {resolution!r}")
    uris = []
    for key in ("first_frame_image", "end_frame_image"):
        frame = one.get(key)
        if frame is None:
            continue
        uri = frame.get("image_uri") if isinstance(frame, dict) else None
        if not isinstance(uri, str) or not uri:
            raise _invalid(f"{key}.image_uri missing")
        uris.append(uri)
    if "end_frame_image" in one and "first_frame_image" not in one:
        raise _invalid("end_frame_image without first_frame_image")
    submit_id = body.get("submit_id")
    return VideoRequest(
        submit_id=submit_id if isinstance(submit_id, str) else None,
        model=root_model,
        prompt=one["prompt"],
        duration_ms=duration,
        ratio=params["video_aspect_ratio"],
        resolution=resolution,
        frame_uris=uris,
    )


def nominal_size(ratio: str, resolution: str | None) -> tuple[int, int]:
    short = int((resolution or "720p").removesuffix("p"))
    a, b = (int(x) for x in ratio.split(":"))
    long = 2 * round(short * max(a, b) / min(a, b) / 2)
    return (long, short) if a >= b else (short, long)


class VideoRoutes:
    """Mixin of :class:`SimulatorApp`: video generate, items and files."""

    state: SimState
    settings: SimSettings
    reject: Callable[..., Reply]
    url_signature: Callable[[str, int], str]
    parallel_limit: Callable[[Ctx, int], Reply]

    def generate_video(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        state, settings = self.state, self.settings
        try:
            req = parse_video(body, settings)
        except VideoDraftError as exc:
            return self.reject(ctx, exc.ret, exc.errmsg, exc.reason)
        if req.model in settings.video_shark_models and not ctx.request.args.get(
            "a_bogus"
        ):
            state.record_rejection(ctx.endpoint, "4013", f"shark: {req.model}")
            return Reply(
                "4013",
                RISK_ERRMSG,
                {
                    "aigc_data": None,
                    "fail_code": "4013",
                    "fail_starling_key": RISK_STARLING_KEY,
                    "fail_starling_message": RISK_ERRMSG,
                },
            )
        missing = [u for u in req.frame_uris if u not in state.committed_uris]
        if missing:
            return self.reject(ctx, "1000", "invalid parameter", f"unknown {missing}")
        cost = settings.video_cost
        with state.lock:
            limit = settings.max_running_per_session
            if limit and state.running_tasks(ctx.session) >= limit:
                return self.parallel_limit(ctx, limit)
            account = state.account(ctx.session)
            spendable = (
                account.total
                if settings.video_gift_spendable
                else (account.purchase_credit + account.vip_credit)
            )
            if spendable < cost:
                state.record_rejection(
                    ctx.endpoint, "1006", f"video credits {spendable} < cost {cost}"
                )
                return Reply(
                    "1006",
                    NO_BENEFIT_ERRMSG,
                    {
                        "aigc_data": None,
                        "fail_code": "1006",
                        "fail_starling_key": CREDIT_STARLING_KEY,
                        "fail_starling_message": NO_BENEFIT_ERRMSG,
                    },
                )
            account.charge_video(cost, settings.video_gift_spendable)
            task = self.new_video_task(ctx.session, req, cost)
            state.add_task(task)
        if "null_aigc_data" in ctx.faults:
            state.count_fault("null_aigc_data")
            return Reply(data={"aigc_data": None})
        return Reply(
            data={"aigc_data": self.aigc_data(task), "forecast_generate_cost": cost}
        )

    aigc_data: Callable[[Task], dict[str, Any]]

    def new_video_task(self, session: str, req: VideoRequest, cost: int) -> Task:
        state = self.state
        words = [w.lower() for w in self.settings.blocked_words if w]
        blocked = any(w in req.prompt.lower() for w in words)
        history_id = state.new_id()
        wait, position, length = (0.0, 0, 0) if blocked else state.planned_queue()
        fate, stop_at, shift, fail_code = state.planned_fate(1, blocked)
        width, height = nominal_size(req.ratio, req.resolution)
        return Task(
            history_id=history_id,
            submit_id=req.submit_id or str(uuid.uuid4()),
            session=session,
            model=req.model,
            prompt=req.prompt,
            width=width,
            height=height,
            gen_count=1,
            created=state.clock.now(),
            duration=state.planned_duration(self.settings.video_task_seconds),
            blocked=blocked,
            item_ids=[str(7_600_000_000_000_000_000 + int(history_id))],
            image_keys=[state.hex_token(32)],
            queue_wait=wait,
            queue_position=position,
            queue_length=length,
            fate=fate,
            stop_at=stop_at,
            stall_shift=shift,
            fail_code=fail_code,
            final_without_items=state.chance(self.settings.final_without_items_rate),
            cost=cost,
            kind="video",
            video={
                "duration_ms": req.duration_ms,
                "ratio": req.ratio,
                "resolution": req.resolution or "720p",
                "frames": list(req.frame_uris),
            },
        )

    # -- records ---------------------------------------------------------------
    def video_url(self, request: Request, hid: str, name: str, now: float) -> str:
        base = (self.settings.public_base_url or request.host_url).rstrip("/")
        path = f"/vid/{hid}/{name}.mp4"
        expires = int(now + self.settings.image_url_ttl)
        sig = self.url_signature(path, expires)
        return f"{base}{path}?x-expires={expires}&x-signature={sig}"

    image_url: Callable[[Request, str, str, float], str]

    def video_item(self, ctx: Ctx, task: Task, now: float) -> dict[str, Any]:
        """A record's video item (CN shape: ``video.transcoded_video.origin``)."""
        play = self.video_url(ctx.request, task.history_id, "play", now)
        cover = self.image_url(ctx.request, task.history_id, "0-cover.png", now)
        item_id = task.item_ids[0]
        video = task.video
        return {
            "common_attr": {
                "id": item_id,
                "effect_id": item_id,
                "effect_type": 15,
                "title": "",
                "description": task.prompt,
                "cover_url": cover,
                "cover_url_map": {"720": cover},
                "item_urls": [play],
            },
            "video": {
                "video_id": f"v0{item_id}",
                "duration_ms": video["duration_ms"],
                "width": task.width,
                "height": task.height,
                "fps": 24,
                "cover_url": cover,
                "play_url": play,
                "transcoded_video": {
                    "origin": {
                        "video_url": play,
                        "width": task.width,
                        "height": task.height,
                        "definition": video["resolution"],
                        "format": "mp4",
                    }
                },
                "video_model": None,
            },
            "extra": {"credits_consume": task.cost},
        }

    # -- get_local_item_list ---------------------------------------------------
    def local_items(self, ctx: Ctx) -> Reply:
        body = ctx.request.get_json(silent=True)
        ids = body.get("item_id_list") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return self.reject(
                ctx, "1000", "invalid parameter", "item_id_list not str[]"
            )
        now = self.state.clock.now()
        with self.state.lock:
            tasks = {
                t.item_ids[0]: t
                for t in self.state.tasks.values()
                if t.kind == "video" and t.session == ctx.session and t.item_ids
            }
            vip = self.state.account(ctx.session).vip_credit > 0
        items = []
        for item_id in ids:
            task = tasks.get(item_id)
            if task is None or task.progress(now)[0] != 50:
                continue
            item = self.video_item(ctx, task, now)
            if vip:
                hq = self.video_url(ctx.request, task.history_id, "hq", now)
                item["video"]["transcoded_video"]["origin"]["video_url"] = hq
                item["video"]["video_model"] = json.dumps(
                    {
                        "video_list": {
                            "video_1": {
                                "main_url": base64.b64encode(hq.encode()).decode(),
                                "definition": task.video["resolution"],
                                "vwidth": task.width,
                                "vheight": task.height,
                            }
                        }
                    }
                )
            items.append(item)
        return Reply(data={"item_list": items})

    # -- the files ---------------------------------------------------------------
    def video_file(self, request: Request) -> Response:
        parts = request.path.split("/")
        if len(parts) != 4 or parts[3] not in ("play.mp4", "hq.mp4"):
            raise NotFound()
        expires = request.args.get("x-expires", "")
        sig = request.args.get("x-signature", "")
        if not expires.isdigit() or not hmac.compare_digest(
            self.url_signature(request.path, int(expires)), sig
        ):
            return Response("Forbidden: bad signature", 403, content_type="text/plain")
        if int(expires) < self.state.clock.now():
            return Response("Forbidden: URL expired", 403, content_type="text/plain")
        task = self.state.find_task(parts[2], False)
        if task is None or task.kind != "video":
            raise NotFound()
        side = VIDEO_SIDE * (2 if parts[3] == "hq.mp4" else 1)
        width, height = served_size(task.width, task.height, max(MIN_SIDE, side))
        seconds = task.video["duration_ms"] / 1000
        data = render_mp4(request.path, width, height, seconds)
        response = Response(data, 200, content_type="video/mp4")
        return response.make_conditional(
            request, accept_ranges=True, complete_length=len(data)
        )
