"""Introspection routes under ``/__sim/`` (stats, reset, config, credits, clock)."""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .settings import SimSettings
from .state import SimState
from .wire import json_response

SIM_ROUTES = Map(
    [
        Rule("/__sim/health", endpoint="health"),
        Rule("/__sim/stats", endpoint="stats"),
        Rule("/__sim/tasks/<hid>", endpoint="task"),
        Rule("/__sim/reset", endpoint="reset", methods=["POST"]),
        Rule("/__sim/config", endpoint="config", methods=["GET", "POST"]),
        Rule("/__sim/credits", endpoint="credits", methods=["POST"]),
        Rule("/__sim/clock", endpoint="clock", methods=["GET", "POST"]),
    ]
)


class IntrospectionRoutes:
    """Mixin of :class:`SimulatorApp` for ``/__sim/…``."""

    state: SimState
    settings: SimSettings
    initial_settings: SimSettings

    def introspection(self, request: Request) -> Response:
        adapter = SIM_ROUTES.bind_to_environ(request.environ)
        endpoint, values = adapter.match()
        body = request.get_json(silent=True) if request.method == "POST" else None
        body = body if isinstance(body, dict) else {}
        state = self.state
        if endpoint == "health":
            return json_response({"ok": True})
        if endpoint == "stats":
            return json_response(state.stats(request.args.get("tasks", "1") != "0"))
        if endpoint == "task":
            task = state.find_task(values["hid"], False)
            if task is None:
                raise NotFound()
            return json_response(task.summary(state.clock.now()))
        if endpoint == "reset":
            if body.get("restore_settings"):
                self.settings.update(self.initial_settings.to_dict())
            state.reset()
            return json_response({"ok": True})
        if endpoint == "config":
            return self.config(body)
        if endpoint == "credits":
            return self.sim_credits(body)
        return self.clock(body)

    def config(self, changes: dict[str, Any]) -> Response:
        try:
            self.settings.update(changes)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        if "seed" in changes:
            with self.state.lock:
                self.state.rng.seed(self.settings.seed)
        return json_response(self.settings.to_dict())

    def sim_credits(self, body: dict[str, Any]) -> Response:
        session = body.get("session")
        if not isinstance(session, str):
            return json_response({"error": "session (string) required"}, 400)
        values = dict(body)
        if "credits" in values:
            values = {
                "gift_credit": values["credits"],
                "purchase_credit": 0,
                "vip_credit": 0,
            }
        try:
            account = self.state.set_credits(session, values)
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({**account.credit(), "total": account.total})

    def clock(self, body: dict[str, Any]) -> Response:
        clock = self.state.clock
        try:
            if "advance" in body:
                clock.advance(float(body["advance"]))
            elif "set" in body:
                clock.set(float(body["set"]))
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"now": clock.now(), "offset": clock.offset})
