"""The store: jobs, keys with TTLs, leases and slots shared by every worker.

``open_store(url, data_dir)`` picks the backend from ``STORE_URL``:

- ``""`` or ``"sqlite"``: the file ``<data_dir>/jimeng.sqlite3`` (the default, one
  host);
- ``sqlite:///abs/path.db`` or ``sqlite:relative.db`` (relative to the working
  directory): that SQLite file;
- ``redis://…``, ``rediss://…`` or ``unix://…``: a Redis server (several hosts);
- ``memory://``: a dict in this process, for tests only (nothing is shared
  between workers and everything is lost on exit).

The helpers below are shared by the backends; code above this package uses only
``Store`` and ``open_store``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .base import FINISHED, UNFINISHED, Store, StoreError

__all__ = ["FINISHED", "UNFINISHED", "Store", "StoreError", "open_store"]

log = logging.getLogger(__name__)

DEFAULT_FILE = "jimeng.sqlite3"
#: fields a job is created with and that never change afterwards
FIXED_FIELDS = ("id", "owner", "created_at")
#: the shortest TTL; a TTL <= 0 means "expire at once", i.e. after this long
MIN_TTL = 0.001

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]{0,19}):")


def open_store(url: str, data_dir: str) -> Store:
    """Return the backend named by *url* (the ``STORE_URL`` setting).

    Raises ``ValueError`` for an unknown form (the message never repeats the
    URL, which may hold a password) and ``StoreError`` if *data_dir* cannot be
    created.
    """
    url = (url or "").strip()
    if url in ("", "sqlite"):
        return _sqlite(os.path.join(data_dir, DEFAULT_FILE), make_dir=data_dir)
    if url.startswith("sqlite:"):
        return _sqlite(_sqlite_path(url))
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore

        return RedisStore(url)
    if url == "memory://":
        from .memory import MemoryStore

        return MemoryStore()
    match = _SCHEME.match(url)
    scheme = f" (scheme {match.group(1)!r})" if match else ""
    raise ValueError(
        f"STORE_URL is not supported{scheme}: use 'sqlite' (the default), "
        "'sqlite:///abs/path.db', 'sqlite:relative.db', 'redis://…', "
        "'rediss://…', 'unix://…' or 'memory://' (tests only)"
    )


def _sqlite_path(url: str) -> str:
    """Return the file of ``sqlite:///abs/path`` or ``sqlite:relative/path``."""
    rest = url[len("sqlite:") :]
    if rest.startswith("///"):
        return rest[2:]
    if rest.startswith("//") or not rest:
        raise ValueError(
            "STORE_URL: write a SQLite file as 'sqlite:///abs/path.db' "
            "or 'sqlite:relative.db'"
        )
    return rest


def _sqlite(path: str, make_dir: str | None = None) -> Store:
    from .sqlite import SqliteStore

    if make_dir is not None:
        try:
            os.makedirs(make_dir, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create DATA_DIR {make_dir!r}: {exc.strerror}"
            ) from exc
    return SqliteStore(path)


# --- helpers shared by the backends -------------------------------------------


def ttl_seconds(ttl: float) -> float:
    """Return *ttl* as a positive number of seconds (at least ``MIN_TTL``)."""
    ttl = float(ttl)
    if math.isnan(ttl):
        raise ValueError("ttl is not a number")
    return max(ttl, MIN_TTL)


def ttl_millis(ttl: float) -> int:
    """Return *ttl* in whole milliseconds (at least 1), rounding up."""
    return max(1, math.ceil(ttl_seconds(ttl) * 1000))


def check_new_job(job: dict[str, Any]) -> str:
    """Validate a job for ``create_job`` and return its JSON text."""
    for field, kind in (("id", str), ("owner", str), ("status", str)):
        if not isinstance(job.get(field), kind) or not job[field]:
            raise ValueError(f"a job needs a non-empty string {field!r}")
    created = job.get("created_at")
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise ValueError("a job needs a numeric 'created_at'")
    return dump_job(job)


def merge_job(job: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return *job* with *changes* merged into its top-level fields.

    ``id``, ``owner`` and ``created_at`` are fixed at creation: changing them
    raises ``ValueError`` (repeating the same value is fine). ``status`` must
    stay a non-empty string.
    """
    for field in FIXED_FIELDS:
        if field in changes and changes[field] != job.get(field):
            raise ValueError(f"a job's {field!r} cannot change")
    merged = {**job, **changes}
    if not isinstance(merged.get("status"), str) or not merged["status"]:
        raise ValueError("a job needs a non-empty string 'status'")
    return merged


def dump_job(job: dict[str, Any]) -> str:
    """Return the JSON text stored for *job*."""
    return json.dumps(job, ensure_ascii=False, separators=(",", ":"))


def load_job(raw: str | bytes | None, job_id: str) -> dict[str, Any] | None:
    """Parse a stored job; log and return None if it is not a JSON object."""
    if raw is None:
        return None
    try:
        job = json.loads(raw)
    except (TypeError, ValueError):
        job = None
    if not isinstance(job, dict):
        log.warning("job %s: unreadable record in the store, ignored", job_id)
        return None
    return job


def describe_url(url: str) -> str:
    """Return *url* without credentials or query (safe for messages)."""
    parts = urlsplit(url)
    where = parts.path if parts.scheme == "unix" else parts.netloc.rpartition("@")[2]
    if parts.scheme != "unix" and parts.path not in ("", "/"):
        where += parts.path
    return f"{parts.scheme}://{where}"


def url_secrets(url: str) -> list[str]:
    """Return the password(s) in *url*, raw and decoded."""
    parts = urlsplit(url)
    found = [parts.password or "", *parse_qs(parts.query).get("password", [])]
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)
