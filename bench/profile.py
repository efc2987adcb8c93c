"""py-spy on every gunicorn worker during a run: the inclusive and self share
of each function in the samples (collapsed stacks, ``--format raw``).

py-spy is optional (``pip install py-spy``); it must be allowed to ptrace the
workers (root, or ``kernel.yama.ptrace_scope`` 0). It samples with
``--nonblocking`` (the workers are not paused) at ``rate`` Hz.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from . import log
from .procfs import ProcessTree

#: a sample whose innermost Python frame is one of these is the loop waiting
IDLE = {"Hub.run (gevent/hub.py)"}
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def available() -> str | None:
    """py-spy on PATH, or next to this Python (a venv that is not activated)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def frame_name(frame: str) -> str:
    """``func (path/to/module.py:12)`` → ``func (module.py)``."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{match.group('func')} ({short})"


def collapse(text: str) -> tuple[Counter, Counter, int, int]:
    """Inclusive and self sample counts per function, the samples outside the
    event loop's own wait, and those in it (left out of the shares)."""
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = idle = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if frames[-1] in IDLE:
            idle += n  # the event loop waiting (py-spy sees gevent's epoll as busy)
            continue
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    return inclusive, own, total, idle


def top(text: str, limit: int = 25) -> dict[str, Any]:
    inclusive, own, total, idle = collapse(text)
    if not total:
        return {"samples": 0, "idle_samples": idle, "inclusive": [], "self": []}

    def share(c: Counter) -> list[dict[str, Any]]:
        return [
            {"frame": k, "share": v / total, "samples": v}
            for k, v in c.most_common(limit)
        ]

    return {
        "samples": total,
        "idle_samples": idle,
        "inclusive": share(inclusive),
        "self": share(own),
    }


class PySpy:
    """``start(tree)`` records every worker; ``stop()`` returns ``top()`` of all."""

    def __init__(self, rate: int = 100) -> None:
        self.rate = rate
        self.raw = ""
        self.procs: list[tuple[subprocess.Popen, Path]] = []
        self.dir = Path(tempfile.mkdtemp(prefix="jimeng-pyspy-"))

    def start(self, tree: ProcessTree) -> None:
        exe = available()
        if exe is None:
            log("py-spy is not installed: no profile (pip install py-spy)")
            return
        for pid in tree.rescan():
            out = self.dir / f"{pid}.txt"
            cmd = [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out),
            ]
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            self.procs.append((proc, out))

    def stop(self) -> dict[str, Any] | None:
        if not self.procs:
            return None
        texts = []
        for proc, out in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if out.exists():
                texts.append(out.read_text(errors="replace"))
            elif err:
                log(f"py-spy: {err.decode(errors='replace').strip()[-300:]}")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.procs = []
        self.raw = "\n".join(texts)
        result = top(self.raw, 40)
        result["rate_hz"] = self.rate
        return result
