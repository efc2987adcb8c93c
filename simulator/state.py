"""Mutable simulator state: clock, sessions and credits, tasks, uploads, stats."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .settings import SimSettings
from .timeline import QUEUE_SLOT_SECONDS, Task

MAX_TASKS = 100_000
MAX_EVENTS = 1_000


class SimClock:
    """Wall clock plus an adjustable offset, so tests can jump forward in time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()

    def set(self, unix_time: float) -> float:
        self.offset = unix_time - time.time()
        return self.now()


@dataclass
class Account:
    gift_credit: int
    purchase_credit: int = 0
    vip_credit: int = 0
    received_days: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.gift_credit + self.purchase_credit + self.vip_credit

    def credit(self) -> dict[str, int]:
        return {
            "vip_credit": self.vip_credit,
            "gift_credit": self.gift_credit,
            "purchase_credit": self.purchase_credit,
        }

    def charge_video(self, amount: int, gift_ok: bool) -> None:
        """Pay for a video: purchased, then VIP credits (gift first if allowed)."""
        names = ("purchase_credit", "vip_credit")
        for name in ("gift_credit", *names) if gift_ok else names:
            take = min(amount, getattr(self, name))
            setattr(self, name, getattr(self, name) - take)
            amount -= take

    def charge(self, amount: int) -> None:
        for name in ("gift_credit", "purchase_credit", "vip_credit"):
            take = min(amount, getattr(self, name))
            setattr(self, name, getattr(self, name) - take)
            amount -= take


@dataclass
class Upload:
    store_uri: str
    auth: str
    session_key: str
    file_size: int
    data: bytes | None = None
    committed: bool = False


class SimState:
    """Everything the simulator remembers; every access goes through ``lock``."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.lock = threading.RLock()
        self.clock = SimClock()
        self.rng = random.Random(settings.seed)
        self._next_id = 7_897_216_041_996 + self.rng.randrange(10**6) * 1000
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.clock.offset = 0.0
            self.rng.seed(self.settings.seed)
            self.accounts: dict[str, Account] = {}
            self.tasks: dict[str, Task] = {}
            self.submit_index: dict[str, str] = {}
            self.calls: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.submissions = 0
            self.polls = 0
            self.history_calls_by_session: Counter[str] = Counter()
            self.duplicate_submit_ids = 0
            self.violations: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
            self.rejections: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
            self.upload_tokens: dict[str, tuple[str, str]] = {}
            self.uploads: dict[str, Upload] = {}
            self.committed_uris: set[str] = set()

    # -- ids and randomness -------------------------------------------------
    def new_id(self) -> str:
        with self.lock:
            self._next_id += self.rng.randrange(1, 1000)
            return str(self._next_id)

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.lock:
            return self.rng.random() < rate

    def hex_token(self, length: int) -> str:
        with self.lock:
            return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def planned_duration(self, seconds: float | None = None) -> float:
        """Processing time of a new task (scaled by ``time_scale``); *seconds*
        replaces ``task_seconds`` (videos)."""
        s = self.settings
        base = s.task_seconds if seconds is None else seconds
        with self.lock:
            if s.duration_model == "lognormal":
                factor = self.rng.lognormvariate(0.0, s.task_sigma)
            else:
                factor = 1 + self.rng.uniform(-s.task_jitter, s.task_jitter)
        return max(0.0, base * factor) * s.time_scale

    def planned_queue(self) -> tuple[float, int, int]:
        """(scaled wait, queue_idx at submission, queue_length) of a new task.

        The wait is exponential with mean ``queue_seconds``; the position is the
        unscaled wait over QUEUE_SLOT_SECONDS, so it looks real at any scale.
        """
        s = self.settings
        if s.queue_seconds <= 0:
            return 0.0, 0, 0
        with self.lock:
            wait = self.rng.expovariate(1 / s.queue_seconds)
            position = max(1, round(wait / QUEUE_SLOT_SECONDS))
            length = position + self.rng.randrange(position + 1)
        return wait * s.time_scale, position, length

    def planned_fate(
        self, gen_count: int, blocked: bool
    ) -> tuple[str, int, float | None, str]:
        """(fate, images before it, stall shift, fail_code) of a new task."""
        s = self.settings
        if blocked:
            return "blocked", 0, None, "2038"
        with self.lock:
            if gen_count >= 2 and self.chance(s.partial_fail_rate):
                codes = s.partial_fail_codes or ["1017"]
                stop = self.rng.randint(1, gen_count - 1)
                return "partial_fail", stop, None, self.rng.choice(codes)
            if self.chance(s.stall_rate):
                stop = self.rng.randint(1, gen_count - 1) if gen_count >= 2 else 0
                shift = s.stall_seconds
                scaled = None if shift is None else shift * s.time_scale
                return "stall", stop, scaled, ""
        return "ok", 0, None, ""

    # -- events -------------------------------------------------------------
    def count_call(self, endpoint: str) -> None:
        with self.lock:
            self.calls[endpoint] += 1

    def count_fault(self, name: str) -> None:
        with self.lock:
            self.faults[name] += 1

    def record_violation(self, endpoint: str, reason: str, session: str) -> None:
        with self.lock:
            self.violations.append(
                {
                    "time": self.clock.now(),
                    "endpoint": endpoint,
                    "reason": reason,
                    "session": session,
                }
            )

    def record_rejection(self, endpoint: str, ret: str, reason: str) -> None:
        with self.lock:
            self.rejections.append(
                {
                    "time": self.clock.now(),
                    "endpoint": endpoint,
                    "ret": ret,
                    "reason": reason,
                }
            )

    # -- accounts -----------------------------------------------------------
    def account(self, session: str) -> Account:
        with self.lock:
            acct = self.accounts.get(session)
            if acct is None:
                acct = Account(gift_credit=self.settings.initial_credits)
                self.accounts[session] = acct
            return acct

    def day(self) -> int:
        offset = self.settings.day_utc_offset_hours * 3600
        return int((self.clock.now() + offset) // 86400)

    def set_credits(self, session: str, values: dict[str, int]) -> Account:
        with self.lock:
            acct = self.account(session)
            for name in ("gift_credit", "purchase_credit", "vip_credit"):
                if name in values:
                    setattr(acct, name, int(values[name]))
            return acct

    # -- tasks --------------------------------------------------------------
    def running_tasks(self, session: str) -> int:
        now = self.clock.now()
        with self.lock:
            return sum(
                1
                for t in self.tasks.values()
                if t.session == session and t.finished_at > now
            )

    def add_task(self, task: Task) -> None:
        with self.lock:
            if task.submit_id in self.submit_index:
                self.duplicate_submit_ids += 1
            self.tasks[task.history_id] = task
            self.submit_index[task.submit_id] = task.history_id
            self.submissions += 1
            while len(self.tasks) > MAX_TASKS:
                old = self.tasks.pop(next(iter(self.tasks)))
                if self.submit_index.get(old.submit_id) == old.history_id:
                    del self.submit_index[old.submit_id]

    def find_task(self, key: str, by_submit: bool) -> Task | None:
        with self.lock:
            if by_submit:
                key = self.submit_index.get(key, "")
            return self.tasks.get(key)

    def observe_poll(self, task: Task, now: float, final: bool, items: bool) -> None:
        """Note one history call that returned *task* (for latency stats)."""
        with self.lock:
            task.polls += 1
            task.last_polled_at = now
            if task.first_polled_at is None:
                task.first_polled_at = now
            if final and task.final_seen_at is None:
                task.final_seen_at = now
            if final and items and task.delivered_at is None:
                task.delivered_at = now

    # -- introspection ------------------------------------------------------
    def stats(self, include_tasks: bool = True) -> dict[str, Any]:
        now = self.clock.now()
        with self.lock:
            tasks = {hid: t.summary(now) for hid, t in self.tasks.items()}
            durations = [
                t["planned_seconds"]
                for t in tasks.values()
                if t["planned_seconds"] is not None
            ]
            result = {
                "now": now,
                "calls": dict(self.calls),
                "submissions": self.submissions,
                "polls": self.polls,
                "history_calls_by_session": dict(self.history_calls_by_session),
                "duplicate_submit_ids": self.duplicate_submit_ids,
                "faults": dict(self.faults),
                "credits": {
                    sid: {**a.credit(), "total": a.total}
                    for sid, a in self.accounts.items()
                },
                "violations": list(self.violations),
                "rejections": list(self.rejections),
                "uploads": len(self.committed_uris),
                "task_count": len(tasks),
                "mean_task_seconds": (
                    sum(durations) / len(durations) if durations else None
                ),
                "settings": self.settings.to_dict(),
            }
            if include_tasks:
                result["tasks"] = tasks
            return result
