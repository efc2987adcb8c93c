"""WSGI app of the Jimeng upstream simulator (protocol §1–5, §10, Appendix A).

This module routes, injects faults, runs the strict/risk/session checks and wraps
answers in their envelopes; the endpoints live in generate, history, images,
commerce and uploads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.wrappers import Request, Response

from .commerce import CommerceRoutes, passport_error
from .generate import GenerateRoutes
from .history import HistoryRoutes
from .images import ImageRoutes
from .introspect import IntrospectionRoutes
from .settings import FAULT_GROUPS, SimSettings
from .sites import origin_of, site_of, site_violation
from .state import SimState
from .strict import (
    RISK_ERRMSG,
    RISK_STARLING_KEY,
    commerce_query_violation,
    risk_violation,
    sign_violation,
)
from .uploads import UploadRoutes
from .video import VideoRoutes
from .wire import Ctx, Reply, dumps, json_response, reset_connection, version_tuple

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
    "/mweb/v1/get_local_item_list": ("local_items", "mweb"),
}


class SimulatorApp(
    GenerateRoutes,
    HistoryRoutes,
    ImageRoutes,
    CommerceRoutes,
    UploadRoutes,
    VideoRoutes,
    IntrospectionRoutes,
):
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
            "local_items": self.local_items,
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
        if path.startswith("/vid/"):
            return self.guarded(request, "video", self.video_file)
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
        """Strict checks (1014, risk 4013), minimum Appvr (3018), session (1015)."""
        if self.settings.strict:
            reply = self.strict_reply(ctx)
            if reply is not None:
                return reply
        minimum = self.settings.min_appvr
        if minimum and ctx.family != "passport":
            appvr = ctx.request.headers.get("Appvr", "")
            if not appvr or version_tuple(appvr) < version_tuple(minimum):
                self.state.record_rejection(ctx.endpoint, "3018", f"Appvr {appvr!r}")
                return Reply("3018", "permission denied")
        if not self.session_ok(ctx.session):
            if ctx.family == "passport":
                return passport_error(13, "会话过期，请重新登录")
            self.state.record_rejection(ctx.endpoint, "1015", "invalid session")
            return Reply("1015", "login error")
        return None

    def strict_reply(self, ctx: Ctx) -> Reply | None:
        request, family, settings = ctx.request, ctx.family, self.settings
        site = site_of(settings)
        skew = settings.device_time_skew
        checks: list[tuple[str | None, int, str]] = [
            (sign_violation(request, family, skew, web_id=site.web_id), 1014, ""),
            (commerce_query_violation(request, family), 1014, "system busy"),
            (site_violation(request, family, site), 1014, ""),
            (risk_violation(request, family, origin_of(settings)), 4013, ""),
        ]
        for reason, code, errmsg in checks:
            if not reason:
                continue
            self.state.record_violation(ctx.endpoint, reason, ctx.session)
            if code == 4013:
                if family == "passport":
                    return passport_error(4013, RISK_ERRMSG)
                return Reply(
                    "4013",
                    RISK_ERRMSG,
                    {
                        "fail_code": "4013",
                        "fail_starling_key": RISK_STARLING_KEY,
                        "fail_starling_message": RISK_ERRMSG,
                    },
                )
            if family == "passport":
                return passport_error(1014, "sign error")
            return Reply("1014", errmsg or "sign error")
        return None

    def session_ok(self, session: str) -> bool:
        prefix = self.settings.invalid_session_prefix
        return bool(session) and not (prefix and session.startswith(prefix))

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


def create_simulator(settings: SimSettings | None = None) -> SimulatorApp:
    """Return the simulator's WSGI app (``.settings``/``.state`` for introspection)."""
    return SimulatorApp(settings)
