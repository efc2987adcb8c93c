"""Waiting for SQLite's locks without stopping a gevent worker.

SQLite's own busy handler sleeps inside C, which stops every greenlet of the
process, so the connection's ``busy_timeout`` is 0 and a locked attempt is
retried here with ``time.sleep`` (a greenlet switch under gevent) for up to
``BUSY_TIMEOUT_MS``.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from typing import Any

from .base import StoreError

BUSY_TIMEOUT_MS = 5000
BUSY_PAUSES = (0.0005, 0.001, 0.002, 0.005, 0.01)  # then 0.01 s each


def is_locked(exc: BaseException) -> bool:
    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
    text = str(cause)
    return isinstance(cause, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text
    )


def locked(attempt: Any) -> Any:
    """Run *attempt* until the file is not locked by another process, sleeping
    between tries (a greenlet switch under gevent) for up to BUSY_TIMEOUT_MS."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    for tries in itertools.count():
        try:
            return attempt()
        except (sqlite3.OperationalError, StoreError) as exc:
            if not is_locked(exc) or time.monotonic() > deadline:
                raise
        time.sleep(BUSY_PAUSES[min(tries, len(BUSY_PAUSES) - 1)])


def use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode (once per file; workers that open it at the
    same moment find it locked and wait)."""

    def mode() -> str:
        return conn.execute("PRAGMA journal_mode").fetchone()[0].lower()

    while locked(mode) != "wal":
        locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
