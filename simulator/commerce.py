"""Credits (§3.1, §3.2: ``user_credit``, ``credit_receive``) and passport (§3.5)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .settings import SimSettings
from .state import SimState
from .wire import Ctx, Reply


def passport_error(code: int, description: str) -> Reply:
    return Reply(
        raw={
            "data": {"error_code": code, "description": description},
            "message": "error",
        }
    )


class CommerceRoutes:
    """Mixin of :class:`SimulatorApp` for the commerce and passport endpoints."""

    state: SimState
    settings: SimSettings
    reject: Callable[..., Reply]
    body_json: Callable[[Ctx], Any]

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
