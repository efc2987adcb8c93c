"""Where a finished video's MP4 lives: fetched once from Jimeng's CDN through
the safe fetcher (and the account's proxy), then kept in ``DATA_DIR/videos``
as long as its job is (``JOB_TTL``)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .fetcher import SafeFetcher

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def video_file(
    job: dict[str, Any],
    config: Any,
    fetcher: SafeFetcher,
    proxy: str | None = None,
) -> Path:
    """The job's MP4 on disk, fetched the first time it is asked for."""
    path = _path(config["DATA_DIR"], job["id"])
    if path.exists():
        return path
    limit = int(config.get("VIDEO_FETCH_MAX_BYTES") or DEFAULT_MAX_BYTES)
    fetched = fetcher.fetch(
        job["urls"][0],
        purpose="video",
        accept=("video/",),
        max_bytes=limit,
        proxy=proxy,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    _prune(path.parent, config["JOB_TTL"])
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as out:
        out.write(fetched.content)
    os.replace(out.name, path)
    return path


def forget_video_file(config: Any, video_id: str) -> None:
    _path(config["DATA_DIR"], video_id).unlink(missing_ok=True)


def _path(data_dir: str, video_id: str) -> Path:
    safe = "".join(c for c in video_id if c.isalnum() or c == "_")[:80]
    return Path(data_dir) / "videos" / f"{safe}.mp4"


def _prune(folder: Path, ttl: float) -> None:
    """Drop the files of jobs that expired (kept as long as the job is)."""
    cutoff = time.time() - ttl
    for old in folder.glob("*"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass
