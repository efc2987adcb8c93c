"""Pooled mode: the server holds the Jimeng sessions and schedules them.

Which sessions exist (``JIMENG_SESSION_IDS`` plus ``JIMENG_SESSION_FILE``, reread on
SIGHUP or when the file changes), in which order to try them (healthy and funded
first, round-robin), how many generations each may run, and cached balances.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from flask import Flask, current_app

from config import ConfigError

from . import metrics
from .errors import APIError, ServiceUnavailableError, SessionExpiredError
from .generation import Generator
from .logs import token_id
from .tokens import _TOKEN

log = logging.getLogger(__name__)

FILE_CHECK_INTERVAL = 5.0  # seconds between two stat() calls on the session file
READY, DRY, COOLING = 0, 1, 2  # scheduling tiers, tried in this order

_pools: weakref.WeakSet[AccountPool] = weakref.WeakSet()


def read_session_file(path: str) -> list[str]:
    """Return the session ids in *path*: one a line, ``#`` comments and blanks out."""
    with open(path, encoding="utf-8") as file:
        lines = [line.split("#", 1)[0].strip() for line in file]
    ids = []
    for number, line in enumerate(lines, 1):
        if line and not _TOKEN.match(line):
            log.warning("%s line %d is not a session id; skipped", path, number)
        elif line:
            ids.append(line)
    return ids


def _in_background(work: Callable[[], None]) -> None:
    # a greenlet under gunicorn+gevent (threading is patched), a thread otherwise
    threading.Thread(target=work, name="pool-refresh", daemon=True).start()


class Lease:
    """One generation's slot on a session; freed when called or garbage-collected."""

    def __init__(self, pool: AccountPool, token: str) -> None:
        self._pool, self._token = pool, token
        # Covers a job whose progress() never ran (a client gone before the first
        # byte). The GC may run it anywhere, even inside the pool's lock, so it
        # only queues the token; the pool frees queued slots on its next use.
        self._orphan = weakref.finalize(self, pool._orphans.append, token)
        self._orphan.atexit = False

    def __call__(self) -> None:
        if self._orphan.detach():  # at most once
            self._pool._release(self._token)


class AccountPool:
    """The pooled sessions, their concurrency slots and cached balances."""

    def __init__(self, generator: Generator, config: Any) -> None:
        self.generator = generator
        self.client = generator.client
        self.cooldowns = generator.cooldowns
        self.ttl = config["CREDIT_CACHE_TTL"]
        self.cap = config["POOL_MAX_CONCURRENCY"]
        self.limit = config["MAX_TOKENS_PER_REQUEST"]
        self.path = config["JIMENG_SESSION_FILE"]
        self.check_interval = FILE_CHECK_INTERVAL
        self.spawn: Callable[[Callable[[], None]], None] = _in_background
        self._fixed = [t for t in config["JIMENG_SESSION_IDS"] if _TOKEN.match(t)]
        if len(self._fixed) < len(config["JIMENG_SESSION_IDS"]):
            log.warning("JIMENG_SESSION_IDS: entries that are not session ids skipped")
        self._sessions: list[str] = []
        self._file_stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._reload_requested = False
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}
        self._orphans: deque[str] = deque()
        self._balances: dict[str, tuple[int | None, float]] = {}
        self._refreshing: set[str] = set()
        self._turn = 0
        self.reload(initial=True)

    # --- membership ---

    def reload(self, initial: bool = False) -> None:
        """Reread the session file; on failure keep the current sessions."""
        self._checked = time.monotonic()
        self._reload_requested = False
        from_file: list[str] = []
        if self.path:
            try:
                self._file_stamp = self._stamp()
                from_file = read_session_file(self.path)
            except (OSError, UnicodeError) as exc:  # never show the file's content
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                message = f"JIMENG_SESSION_FILE={self.path!r}: {reason}"
                if initial:
                    raise ConfigError(message) from None
                log.warning("session file not reloaded (%s)", message)
                return
        sessions = list(dict.fromkeys(self._fixed + from_file))
        if sessions != self._sessions:
            names = ", ".join(token_id(t) for t in sessions) or "none"
            log.info("session pool: %d sessions (%s)", len(sessions), names)
        self._sessions = sessions
        for gone in set(self._balances) - set(sessions):
            self._balances.pop(gone, None)
        self._publish_health(sessions)

    def request_reload(self) -> None:
        """Reload on next use (safe to call from a signal handler: no lock, no I/O)."""
        self._reload_requested = True

    def sessions(self) -> list[str]:
        """Return every pooled session id, in configured order."""
        if self._reload_requested or self._file_changed():
            self.reload()
        return list(self._sessions)

    def _stamp(self) -> tuple[int, int, int]:
        info = os.stat(self.path)
        return info.st_mtime_ns, info.st_size, info.st_ino

    def _file_changed(self) -> bool:
        """stat() the file at most every ``check_interval`` seconds."""
        now = time.monotonic()
        if not self.path or now - self._checked < self.check_interval:
            return False
        self._checked = now
        try:
            return self._stamp() != self._file_stamp
        except OSError:
            return self._file_stamp is not None  # gone: reload logs why

    # --- scheduling ---

    def candidates(self) -> list[str]:
        """Return the sessions to try for one generation, best first."""
        sessions = self.sessions()
        if not sessions:
            raise ServiceUnavailableError(
                "The session pool is empty: add session ids to JIMENG_SESSION_IDS "
                "or JIMENG_SESSION_FILE."
            )
        self._free_orphans()
        with self._lock:
            turn, self._turn = self._turn, self._turn + 1
        for token in sessions:
            if self._stale(token) and not self.cooldowns.cooling(token):
                self._refresh_soon(token)
        self._publish_health(sessions)
        return self._order(sessions, turn)[: self.limit]

    def order(self, tokens: Sequence[str]) -> list[str]:
        """Sort *tokens* by tier (ready, dry, cooling), keeping their order within."""
        return self._order(tokens, 0)

    def _order(self, tokens: Sequence[str], turn: int) -> list[str]:
        tiers: list[list[str]] = [[], [], []]
        for token in tokens:
            tiers[self._tier(token)].append(token)
        ordered = []
        for tier in tiers:
            first = turn % len(tier) if tier else 0
            ordered += tier[first:] + tier[:first]  # round-robin within the tier
        return ordered

    def _tier(self, token: str) -> int:
        if self.cooldowns.cooling(token):
            return COOLING
        total = self.balance(token)
        return DRY if total is not None and total <= 0 else READY

    def hold(self, token: str) -> Lease | None:
        """Take one of *token*'s concurrency slots, or None if all are taken."""
        self._free_orphans()
        with self._lock:
            if self._busy.get(token, 0) >= self.cap:
                return None
            self._busy[token] = self._busy.get(token, 0) + 1
        return Lease(self, token)

    def in_use(self, token: str) -> int:
        """Return how many generations *token* is running."""
        self._free_orphans()
        return self._busy.get(token, 0)

    def _release(self, token: str) -> None:
        with self._lock:
            left = self._busy.get(token, 0) - 1
            if left > 0:
                self._busy[token] = left
            else:
                self._busy.pop(token, None)
            total, _ = self._balances.get(token, (None, 0.0))
            self._balances[token] = (total, float("-inf"))  # credits spent: stale
        if not self.cooldowns.cooling(token):
            self._refresh_soon(token)

    def _free_orphans(self) -> None:
        while True:
            try:
                token = self._orphans.popleft()
            except IndexError:
                return
            log.info("freed the slot of a dropped job on %s", token_id(token))
            self._release(token)

    def _publish_health(self, sessions: Sequence[str]) -> None:
        cooling = sum(1 for token in sessions if self.cooldowns.cooling(token))
        metrics.pool_health(len(sessions) - cooling, cooling)

    # --- balances ---

    def balance(self, token: str) -> int | None:
        """Return the cached total credits of *token* (None: never fetched)."""
        total, _ = self._balances.get(token, (None, 0.0))
        return total

    def remember(
        self, token: str, points: dict[str, int], claimed: bool = False
    ) -> None:
        """Cache a balance just read from Jimeng (after a daily claim if *claimed*)."""
        self._balances[token] = (points["totalCredit"], time.monotonic())
        if claimed and points["totalCredit"] > 0:
            self.cooldowns.clear(token)  # funded again: back in rotation

    def _stale(self, token: str) -> bool:
        entry = self._balances.get(token)
        return entry is None or time.monotonic() - entry[1] >= self.ttl

    def _refresh_soon(self, token: str) -> None:
        """Refresh *token*'s balance off the request path (once at a time)."""
        with self._lock:
            if token in self._refreshing:
                return
            self._refreshing.add(token)
        self.spawn(lambda: self.refresh(token))

    def refresh(self, token: str) -> None:
        """Read *token*'s balance; claim the daily grant if it has run dry."""
        try:
            points, claimed = self.client.credits(token), False
            if points["totalCredit"] <= 0 and self.generator.claim_daily_grant(token):
                points, claimed = self.client.credits(token), True
            self.remember(token, points, claimed)
        except APIError as exc:
            log.info("balance of %s not refreshed: %s", token_id(token), exc.message)
            if isinstance(exc, SessionExpiredError):
                self.cooldowns.mark(token)
            self._balances[token] = (self.balance(token), time.monotonic())
        finally:
            with self._lock:
                self._refreshing.discard(token)

    def refreshing(self) -> bool:
        """Return whether a balance refresh is still running."""
        return bool(self._refreshing)


def _on_sighup(signum: int, frame: Any) -> None:
    for pool in list(_pools):
        pool.request_reload()


def _reload_on_sighup(pool: AccountPool) -> None:
    """Install the SIGHUP handler (main thread only; once per process)."""
    _pools.add(pool)
    if not hasattr(signal, "SIGHUP"):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGHUP) is not _on_sighup:
        try:
            signal.signal(signal.SIGHUP, _on_sighup)
        except ValueError:  # not the main thread after all
            pass


def init_pool(app: Flask, generator: Generator) -> None:
    """Create the pool for *app* if pooled mode is configured, and hook it up."""
    config = app.config
    if not (config["JIMENG_SESSION_IDS"] or config["JIMENG_SESSION_FILE"]):
        return
    pool = AccountPool(generator, config)
    generator.scheduler = pool
    app.extensions["jimeng_pool"] = pool
    if pool.path:
        _reload_on_sighup(pool)


def get_pool() -> AccountPool | None:
    """Return the current app's pool (None in passthrough mode)."""
    return current_app.extensions.get("jimeng_pool")
