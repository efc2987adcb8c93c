"""Everything that is per account, kept in the store so it holds across workers
and hosts: the order of use, cooldowns, the daily claim, cached balances,
concurrency slots and the parallel limit Jimeng enforces (ret 1310).

"Why was this account skipped?" is answered here and nowhere else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from . import metrics
from .errors import (
    APIError,
    InsufficientQuotaError,
    RateLimitError,
    SessionExpiredError,
)
from .store import Store
from .upstream import (
    AlreadyClaimedError,
    JimengClient,
    ProxyUnreachableError,
    account_id,
)
from .upstream.video import NoVideoCreditsError, video_credit

log = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8))  # Jimeng's day starts at midnight in China
READY, DRY, COOLING = 0, 1, 2  # scheduling tiers, tried in this order
UNLIMITED = 1000  # slots of an account with no configured or learned limit
PARALLEL_MEMORY = 6 * 3600.0  # how long a learned parallel limit is trusted
DAY = 86400.0


class Accounts:
    """Per-account state and policy, on the store."""

    def __init__(
        self, store: Store, client: JimengClient, config: Any, *, pooled: bool
    ) -> None:
        self.store = store
        self.client = client
        self.pooled = pooled
        self.cooldown = config["TOKEN_COOLDOWN"]
        self.balance_ttl = config["CREDIT_CACHE_TTL"]
        self.cap = config["POOL_MAX_CONCURRENCY"] if pooled else UNLIMITED
        self.slot_ttl = config["SLOT_TTL"]

    # --- order ----------------------------------------------------------------

    def order(self, tokens: Sequence[str]) -> list[str]:
        """Return *tokens* best first: ready, then out of credits, then cooling;
        round-robin within a tier (the turn is shared by every worker)."""
        tiers: list[list[str]] = [[], [], []]
        for token in tokens:
            tiers[self.tier(token)].append(token)
        turn = self.store.incr("rr", DAY) if len(tokens) > 1 else 0
        if self.pooled:
            cooling = len(tiers[COOLING])
            metrics.pool_health(len(tokens) - cooling, cooling)
        ordered = []
        for tier in tiers:
            first = turn % len(tier) if tier else 0
            ordered += tier[first:] + tier[:first]
        return ordered

    def tier(self, token: str) -> int:
        if self.cooling(token):
            return COOLING
        total = self.balance(token)
        return DRY if total is not None and total <= 0 else READY

    # --- cooldowns ------------------------------------------------------------

    def cooling(self, token: str) -> bool:
        return self.store.get_key(_key("cool", token)) is not None

    def skipped(self, token: str, exc: APIError) -> None:
        """Note why *token* could not take a job; cool it down where it helps."""
        log.info("account %s skipped: %s", account_id(token), exc.message)
        if isinstance(exc, NoVideoCreditsError):
            return  # its credits still pay for images: keep it in rotation
        if isinstance(exc, InsufficientQuotaError) or not isinstance(
            exc, RateLimitError
        ):
            self.cool_down(token)

    def cool_down(self, token: str, seconds: float | None = None) -> None:
        ttl = self.cooldown if seconds is None else seconds
        if ttl > 0:
            self.store.set_key(_key("cool", token), "1", ttl)

    def uncool(self, token: str) -> None:
        self.store.delete_key(_key("cool", token))

    # --- concurrency slots ----------------------------------------------------

    def limit(self, token: str) -> int:
        """How many tasks the account may run: the configured cap, lowered to
        what Jimeng was seen to allow (ret 1310)."""
        learned = self.store.get_key(_key("parallel", token))
        return min(self.cap, int(learned)) if learned else self.cap

    def take_slot(self, token: str, job_id: str) -> bool:
        return self.store.take_slot(
            _key("run", token), job_id, self.limit(token), self.slot_ttl
        )

    def free_slot(self, token: str, job_id: str) -> None:
        self.store.free_slot(_key("run", token), job_id)

    def release(self, account: str, job_id: str) -> None:
        """A job on the account named *account* ended: free its slot; the
        cached balance is stale now."""
        self.store.free_slot(":".join(("acct", "run", account)), job_id)
        self.store.delete_key(":".join(("acct", "balance", account)))

    def renew_slots(self, token: str, job_ids: list[str]) -> None:
        self.store.renew_slots(_key("run", token), job_ids, self.slot_ttl)

    def running(self, token: str) -> int:
        return self.store.slot_count(_key("run", token))

    def at_parallel_limit(self, token: str) -> None:
        """Jimeng refused one more task (1310): remember how many it allows."""
        allowed = max(1, self.running(token) - 1)  # the refused job held a slot
        self.store.set_key(_key("parallel", token), str(allowed), PARALLEL_MEMORY)
        log.info("account %s runs at most %d tasks", account_id(token), allowed)

    # --- credits --------------------------------------------------------------

    def balance(self, token: str) -> int | None:
        """Return the cached total credits (None: not known)."""
        cached = self.store.get_key(_key("balance", token))
        try:
            return int(json.loads(cached)["totalCredit"]) if cached else None
        except (ValueError, KeyError, TypeError):
            return None

    def remember(self, token: str, points: dict[str, int]) -> None:
        """Cache a balance just read from Jimeng; funded again → back in rotation."""
        self.store.set_key(_key("balance", token), json.dumps(points), self.balance_ttl)
        if points.get("totalCredit", 0) > 0 and self.cooling(token):
            self.uncool(token)

    def forget_balance(self, token: str) -> None:
        """Credits were spent: the cached balance is stale."""
        self.store.delete_key(_key("balance", token))

    def points(self, token: str) -> dict[str, int]:
        """Read the balance from Jimeng and cache it; ``videoCredit`` is the part
        that can pay for video (purchased and VIP credits, not the gift)."""
        try:
            points = self.client.credits(token)
        except (SessionExpiredError, ProxyUnreachableError):
            self.cool_down(token)
            raise
        points = {**points, "videoCredit": video_credit(points)}
        self.remember(token, points)
        return points

    def claim_daily_grant(self, token: str) -> bool:
        """Claim today's free credits, once per account per Beijing day across
        every worker and host; return whether a submit is worth retrying."""
        today = datetime.now(BEIJING).date().isoformat()
        if not self.store.set_key(
            _key("claim", token, today), "1", 2 * DAY, only_new=True
        ):
            return False
        try:
            received = self.client.receive_credits(token)
        except APIError as exc:
            log.info("daily grant for %s refused: %s", account_id(token), exc.message)
            return False
        log.info(
            "claimed %s daily credits for %s",
            received.get("receive_quota", "?"),
            account_id(token),
        )
        self.forget_balance(token)
        return True

    def receive(self, token: str) -> dict[str, Any]:
        """``/token/receive``: claim, then read the balance; a refused claim
        still reports the balance (the error says why it was refused)."""
        today = datetime.now(BEIJING).date().isoformat()
        result: dict[str, Any] = {"received": False}
        error: APIError | None = None
        try:
            grant = self.client.receive_credits(token)
            result = {"received": True, "receiveQuota": grant.get("receive_quota")}
        except AlreadyClaimedError as exc:
            error = exc
        except APIError as exc:
            error = exc
        self.store.set_key(_key("claim", token, today), "1", 2 * DAY)
        try:
            result["credits"] = self.points(token)
        except APIError as exc:
            error = error or exc
        if error:
            result["error"] = error.to_dict()["error"]
        return result

    def publish_health(self, tokens: Sequence[str]) -> None:
        cooling = sum(1 for token in tokens if self.cooling(token))
        metrics.pool_health(len(tokens) - cooling, cooling)


def _key(kind: str, token: str, *rest: str) -> str:
    return ":".join(("acct", kind, account_id(token), *rest))
