"""WSGI app of the Jimeng upstream simulator (protocol §1–5, §10, Appendix A)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.wrappers import Request, Response

from .draft import DraftError, GenerateRequest, parse_generate
from .introspect import IntrospectionRoutes
from .png import image_png
from .settings import FAULT_GROUPS, KNOWN_MODELS, SimSettings
from .state import SimState, Task
from .uploads import SERVICE_ID, UploadRoutes
from .wire import (
    Ctx,
    Reply,
    compute_sign,
    dumps,
    json_response,
    reset_connection,
    version_tuple,
)

SIGN_HEADERS = ("Appid", "Appvr", "Pf", "Device-Time", "Sign", "Sign-Ver")
SIGN_QUERY = ("aid", "device_platform", "region")
ITEM_ID_BASE = 7_593_924_000_000_000_000  # item ids: 19 digits like the real ones
CREDIT_STARLING_KEY = "web_dre_m10n_generate_popup_credit_ininsufficient_title"
HTML_5XX = (
    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)

#: path → (endpoint name, envelope family)
JIMENG_ENDPOINTS: dict[str, tuple[str, str]] = {
    "/mweb/v1/aigc_draft/generate": ("generate", "mweb"),
    "/mweb/v1/get_history_by_ids": ("history", "mweb"),
    "/mweb/v1/get_upload_token": ("upload_token", "mweb"),
    "/commerce/v1/benefits/user_credit": ("user_credit", "commerce"),
    "/commerce/v1/benefits/credit_receive": ("credit_receive", "commerce"),
    "/passport/account/info/v2": ("passport", "passport"),
}


class SimulatorApp(UploadRoutes, IntrospectionRoutes):
    """The simulator as a WSGI callable; ``.settings`` and ``.state`` are live."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.settings = settings or SimSettings()
        self.initial_settings = self.settings.copy()
        self.state = SimState(self.settings)
        self.url_secret = os.urandom(16)
        self.handlers: dict[str, Callable[[Ctx], Reply]] = {
            "generate": self.generate,
            "history": self.history,
            "upload_token": self.upload_token,
            "user_credit": self.user_credit,
            "credit_receive": self.credit_receive,
            "passport": self.passport,
        }

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPException as exc:
            response = json_response({"error": exc.name}, exc.code or 500)
        return response(environ, start_response)

    # -- routing --------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/__sim/"):
            return self.introspection(request)
        if path in JIMENG_ENDPOINTS:
            name, family = JIMENG_ENDPOINTS[path]
            return self.jimeng(Ctx(request, name, family))
        if path == "/" and request.args.get("Action"):
            return self.imagex(request)
        if path.startswith("/upload/v1/"):
            return self.guarded(request, "imagex_upload", self.imagex_upload)
        if path.startswith("/img/"):
            return self.guarded(request, "image", self.image)
        self.state.count_call("unknown")
        raise NotFound()

    def guarded(
        self, request: Request, endpoint: str, handler: Callable[[Request], Response]
    ) -> Response:
        """Count the call and apply transport faults around a non-envelope route."""
        self.state.count_call(endpoint)
        faults = self.draw_faults(endpoint)
        early = self.early_fault(request.environ, faults)
        return early or handler(request)

    # -- faults -----------------------------------------------------------------
    def in_scope(self, endpoint: str) -> bool:
        for scope in self.settings.fault_scope:
            if scope in ("all", endpoint) or endpoint in FAULT_GROUPS.get(scope, ()):
                return True
        return False

    def draw_faults(self, endpoint: str) -> set[str]:
        if not self.in_scope(endpoint):
            return set()
        s, chance = self.settings, self.state.chance
        rates = {
            "reset": s.fault_reset,
            "http_5xx": s.fault_http_5xx,
            "non_json": s.fault_non_json,
            "slow": s.fault_slow,
            "numeric_ret": s.fault_numeric_ret,
            "missing_item_list": s.fault_missing_item_list,
            "string_status": s.fault_string_status,
            "null_aigc_data": s.fault_null_aigc_data,
        }
        faults = {name for name, rate in rates.items() if chance(rate)}
        if "slow" in faults:
            self.state.count_fault("slow")
            time.sleep(s.slow_seconds)
        return faults

    def early_fault(self, environ: dict, faults: set[str]) -> Response | None:
        """Faults that replace the answer (nothing is processed)."""
        if "reset" in faults:
            self.state.count_fault("reset")
            reset_connection(environ)
        if "http_5xx" in faults:
            self.state.count_fault("http_5xx")
            code = 502 if self.state.chance(0.5) else 503
            reason = "Bad Gateway" if code == 502 else "Service Temporarily Unavailable"
            html = HTML_5XX.format(code=code, reason=reason)
            return Response(html, code, content_type="text/html")
        if "non_json" in faults:
            self.state.count_fault("non_json")
            body = "upstream connect error or disconnect/reset before headers"
            return Response(body, 200, content_type="text/plain; charset=utf-8")
        return None

    # -- Jimeng endpoints: checks and envelopes ----------------------------------
    def jimeng(self, ctx: Ctx) -> Response:
        request, state = ctx.request, self.state
        state.count_call(ctx.endpoint)
        if request.method != "POST":
            return json_response({"error": "method not allowed"}, 405)
        ctx.faults = self.draw_faults(ctx.endpoint)
        early = self.early_fault(request.environ, ctx.faults)
        if early is not None:
            return early
        ctx.session = request.cookies.get("sessionid", "")
        reply = self.precheck(ctx)
        if reply is None:
            reply = self.handlers[ctx.endpoint](ctx)
        return self.envelope(ctx, reply)

    def precheck(self, ctx: Ctx) -> Reply | None:
        """Strict checks (1014), minimum Appvr (3018) and the session (1015)."""
        if self.settings.strict:
            reason = self.strict_violation(ctx)
            if reason:
                self.state.record_violation(ctx.endpoint, reason, ctx.session)
                if ctx.family == "passport":
                    return self.passport_error(1014, "sign error")
                return Reply("1014", "sign error")
        minimum = self.settings.min_appvr
        if minimum and ctx.family != "passport":
            appvr = ctx.request.headers.get("Appvr", "")
            if not appvr or version_tuple(appvr) < version_tuple(minimum):
                self.state.record_rejection(ctx.endpoint, "3018", f"Appvr {appvr!r}")
                return Reply("3018", "permission denied")
        if not self.session_ok(ctx.session):
            if ctx.family == "passport":
                return self.passport_error(13, "会话过期，请重新登录")
            self.state.record_rejection(ctx.endpoint, "1015", "invalid session")
            return Reply("1015", "login error")
        return None

    def session_ok(self, session: str) -> bool:
        prefix = self.settings.invalid_session_prefix
        return bool(session) and not (prefix and session.startswith(prefix))

    def strict_violation(self, ctx: Ctx) -> str | None:
        headers, args = ctx.request.headers, ctx.request.args
        for name in SIGN_HEADERS:
            if not headers.get(name):
                return f"missing header {name}"
        if headers["Sign-Ver"] != "1":
            return f"Sign-Ver {headers['Sign-Ver']!r} != '1'"
        device_time = headers["Device-Time"]
        if not device_time.isdigit():
            return f"Device-Time {device_time!r} is not integer seconds"
        skew = abs(int(device_time) - time.time())
        if skew > self.settings.device_time_skew:
            return f"Device-Time off by {skew:.0f} s"
        expected = compute_sign(
            ctx.request.path, headers["Pf"], headers["Appvr"], device_time
        )
        if headers["Sign"] != expected:
            return f"Sign mismatch (expected {expected})"
        if ctx.family == "commerce":
            return None  # the browser sends commerce calls without a query (§1.7)
        for name in SIGN_QUERY:
            if not args.get(name):
                return f"missing query param {name}"
        if not (args.get("webId") or args.get("web_id")):
            return "missing query param webId/web_id"
        if args["aid"] != headers["Appid"]:
            return f"query aid {args['aid']!r} != Appid header {headers['Appid']!r}"
        return None

    def envelope(self, ctx: Ctx, reply: Reply) -> Response:
        if reply.raw is not None:
            return json_response(reply.raw)
        now = self.state.clock.now()
        ret: Any = reply.ret
        if "numeric_ret" in ctx.faults:
            self.state.count_fault("numeric_ret")
            ret = int(reply.ret)
        logid = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S")
        logid += self.state.hex_token(20).upper()
        if ctx.family == "commerce":
            payload = dumps(reply.data) if reply.data is not None else ""
            sig = hashlib.sha256(payload.encode("utf-8")).digest()
            return json_response(
                {
                    "ret": ret,
                    "errmsg": reply.errmsg,
                    "svr_time": int(now),
                    "log_id": logid,
                    "response": payload,
                    "sign": base64.b64encode(sig).decode("ascii"),
                    "data": reply.data,
                }
            )
        return json_response(
            {
                "ret": ret,
                "errmsg": reply.errmsg,
                "systime": str(int(now)),
                "logid": logid,
                "data": reply.data,
            }
        )

    def body_json(self, ctx: Ctx) -> Any:
        try:
            return json.loads(ctx.request.get_data() or b"null")
        except ValueError:
            return None

    def reject(self, ctx: Ctx, ret: str, errmsg: str, reason: str) -> Reply:
        self.state.record_rejection(ctx.endpoint, ret, reason)
        return Reply(ret, errmsg)

    # -- generate -----------------------------------------------------------------
    def generate(self, ctx: Ctx) -> Reply:
        state, settings = self.state, self.settings
        try:
            req = parse_generate(self.body_json(ctx), settings)
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
                return self.reject(ctx, "1010", "concurrency limit", f"limit {limit}")
            account = state.account(ctx.session)
            if account.total < cost:
                return self.insufficient(ctx, account.total, cost)
            account.charge(cost)
            task = self.new_task(ctx.session, req)
            state.add_task(task)
        if "null_aigc_data" in ctx.faults:
            state.count_fault("null_aigc_data")
            return Reply(data={"aigc_data": None})
        return Reply(
            data={"aigc_data": self.aigc_data(task), "forecast_generate_cost": cost}
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

    def new_task(self, session: str, req: GenerateRequest) -> Task:
        state = self.state
        words = [w.lower() for w in self.settings.blocked_words if w]
        history_id = state.new_id()
        first_item = ITEM_ID_BASE + int(history_id) * 100
        return Task(
            history_id=history_id,
            submit_id=req.submit_id or str(uuid.uuid1()),
            session=session,
            model=req.model,
            prompt=req.prompt,
            width=req.width,
            height=req.height,
            gen_count=req.gen_count,
            created=state.clock.now(),
            duration=state.planned_duration(),
            blocked=any(w in req.prompt.lower() for w in words),
            item_ids=[str(first_item + i) for i in range(req.gen_count)],
            image_keys=[state.hex_token(32) for _ in range(req.gen_count)],
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

    # -- history ----------------------------------------------------------------
    def history(self, ctx: Ctx) -> Reply:
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
        data = {}
        for key, by_submit in wanted:
            task = self.state.find_task(key, by_submit)
            if task is not None and task.session == ctx.session:
                data[key] = self.record(ctx, task, now)
        return Reply(data=data)

    def record(self, ctx: Ctx, task: Task, now: float) -> dict[str, Any]:
        status, done = task.progress(now)
        status_value: Any = status
        if "string_status" in ctx.faults:
            self.state.count_fault("string_status")
            status_value = str(status)
        fail_code = "2038" if status == 30 else ""
        finish = int(task.finished_at) if status in (30, 50) else 0
        rec: dict[str, Any] = {
            "generate_type": 12,
            "history_record_id": task.history_id,
            "origin_history_record_id": None,
            "created_time": round(task.created, 3),
            "status": status_value,
            "fail_code": fail_code,
            "fail_starling_key": "",
            "fail_starling_message": "",
            "total_image_count": task.gen_count,
            "finished_image_count": done,
            "model_info": {
                "model_req_key": task.model,
                "model_name": KNOWN_MODELS[task.model],
            },
            "task": {
                "task_id": task.history_id,
                "submit_id": task.submit_id,
                "aid": 0,
                "status": status_value,
                "finish_time": finish,
                "history_id": task.history_id,
            },
            "item_list": [self.item(ctx, task, i, now) for i in range(done)],
            "origin_item_list": [],
        }
        if "missing_item_list" in ctx.faults:
            self.state.count_fault("missing_item_list")
            del rec["item_list"]
        return rec

    def item(self, ctx: Ctx, task: Task, index: int, now: float) -> dict[str, Any]:
        url = self.image_url(ctx.request, task.history_id, f"{index}.png", now)
        cover = self.image_url(ctx.request, task.history_id, f"{index}-cover.png", now)
        item_id = task.item_ids[index]
        side = self.settings.image_size
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
                        "width": side,
                        "height": side,
                        "format": "png",
                    }
                ],
            },
        }

    # -- images ---------------------------------------------------------------------
    def url_signature(self, path: str, expires: int) -> str:
        mac = hmac.new(self.url_secret, f"{path}|{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:18]).decode("ascii")

    def image_url(self, request: Request, hid: str, name: str, now: float) -> str:
        base = (self.settings.public_base_url or request.host_url).rstrip("/")
        path = f"/img/{hid}/{name}"
        expires = int(now + self.settings.image_url_ttl)
        sig = self.url_signature(path, expires)
        return f"{base}{path}?x-expires={expires}&x-signature={sig}&format=.png"

    def image(self, request: Request) -> Response:
        parts = request.path.split("/")
        if len(parts) != 4 or not parts[3].endswith(".png"):
            raise NotFound()
        expires = request.args.get("x-expires", "")
        sig = request.args.get("x-signature", "")
        if not expires.isdigit() or not hmac.compare_digest(
            self.url_signature(request.path, int(expires)), sig
        ):
            return Response("Forbidden: bad signature", 403, content_type="text/plain")
        if int(expires) < self.state.clock.now():
            return Response("Forbidden: URL expired", 403, content_type="text/plain")
        hid, name = parts[2], parts[3][:-4]
        size = self.settings.image_size
        if name.endswith("-cover"):
            size = max(16, size // 2)
        png = image_png(f"{hid}/{name}", size)
        return Response(png, 200, content_type="image/png")

    # -- commerce --------------------------------------------------------------------
    def user_credit(self, ctx: Ctx) -> Reply:
        with self.state.lock:
            account = self.state.account(ctx.session)
            credit = account.credit()
        end = int(self.state.clock.now()) // 86400 * 86400 + 86399
        return Reply(
            data={
                "credit": credit,
                "expiring_credits": [
                    {"credit_amount": credit["gift_credit"], "expire_time": end}
                ],
                "credits_detail": {
                    "gift_credits": [
                        {
                            "residual_credits": credit["gift_credit"],
                            "credits_life_end": end,
                        }
                    ]
                },
            }
        )

    def credit_receive(self, ctx: Ctx) -> Reply:
        body = self.body_json(ctx)
        if not isinstance(body, dict) or not isinstance(body.get("time_zone"), str):
            return self.reject(ctx, "34010100", "param error", "time_zone missing")
        state = self.state
        with state.lock:
            account = state.account(ctx.session)
            day = state.day()
            if day in account.received_days:
                state.record_rejection(ctx.endpoint, "1014", "already received today")
                return Reply(
                    "1014",
                    "system busy",
                    {
                        "is_first_receive": False,
                        "receive_quota": 0,
                        "has_popup": False,
                        "cur_total_credits": account.total,
                        "receive_inter_days": 0,
                    },
                )
            first = not account.received_days
            account.received_days.add(day)
            account.gift_credit += self.settings.daily_grant
            return Reply(
                data={
                    "is_first_receive": first,
                    "receive_quota": self.settings.daily_grant,
                    "has_popup": True,
                    "cur_total_credits": account.total,
                }
            )

    # -- passport -----------------------------------------------------------------
    def passport_error(self, code: int, description: str) -> Reply:
        return Reply(
            raw={
                "data": {"error_code": code, "description": description},
                "message": "error",
            }
        )

    def passport(self, ctx: Ctx) -> Reply:
        digest = hashlib.sha256(ctx.session.encode("utf-8")).hexdigest()
        user_id = 10**12 + int(digest[:12], 16) % (9 * 10**12)
        return Reply(
            raw={
                "data": {
                    "user_id": user_id,
                    "screen_name": f"sim-{digest[:6]}",
                    "name": f"sim-{digest[:6]}",
                    "avatar_url": "",
                },
                "message": "success",
            }
        )


def create_simulator(settings: SimSettings | None = None) -> SimulatorApp:
    """Return the simulator's WSGI app (``.settings``/``.state`` for introspection)."""
    return SimulatorApp(settings)
