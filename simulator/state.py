"""Mutable simulator state: clock, sessions and credits, tasks, uploads, stats."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .settings import SimSettings

#: Fractions of a task's duration: queued (status 20) then "thinking" (42).
QUEUED_FRACTION = 0.25
THINKING_FRACTION = 0.15
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
class Task:
    history_id: str
    submit_id: str
    session: str
    model: str
    prompt: str
    width: int
    height: int
    gen_count: int
    created: float
    duration: float
    blocked: bool
    item_ids: list[str] = field(default_factory=list)
    image_keys: list[str] = field(default_factory=list)

    @property
    def finished_at(self) -> float:
        if self.blocked:
            return self.created + self.duration * QUEUED_FRACTION
        return self.created + self.duration

    def progress(self, now: float) -> tuple[int, int]:
        """Return (status, finished image count) at *now*."""
        elapsed = now - self.created
        if now >= self.finished_at:
            return (30, 0) if self.blocked else (50, self.gen_count)
        if elapsed < self.duration * QUEUED_FRACTION:
            return 20, 0
        start = self.duration * (QUEUED_FRACTION + THINKING_FRACTION)
        if elapsed < start:
            return 42, 0
        fraction = (elapsed - start) / max(self.duration - start, 1e-9)
        return 45, min(self.gen_count - 1, int(fraction * self.gen_count))

    def summary(self, now: float) -> dict[str, Any]:
        status, done = self.progress(now)
        return {
            "submit_id": self.submit_id,
            "session": self.session,
            "model": self.model,
            "prompt": self.prompt,
            "gen_count": self.gen_count,
            "blocked": self.blocked,
            "planned_seconds": round(self.finished_at - self.created, 6),
            "created": self.created,
            "finished": self.finished_at,
            "status": status,
            "finished_image_count": done,
        }


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

    def planned_duration(self) -> float:
        s = self.settings
        with self.lock:
            factor = 1 + self.rng.uniform(-s.task_jitter, s.task_jitter)
        return max(0.0, s.task_seconds * factor)

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

    # -- introspection ------------------------------------------------------
    def stats(self, include_tasks: bool = True) -> dict[str, Any]:
        now = self.clock.now()
        with self.lock:
            tasks = {hid: t.summary(now) for hid, t in self.tasks.items()}
            durations = [t["planned_seconds"] for t in tasks.values()]
            result = {
                "now": now,
                "calls": dict(self.calls),
                "submissions": self.submissions,
                "polls": self.polls,
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
