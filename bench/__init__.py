"""Load benchmarks of the real service (gunicorn + gevent) against the simulator.

    python -m bench realistic|burst|soak|restart|all [options]

One module per concern: ``client`` (a minimal HTTP client on gevent sockets),
``procfs`` (CPU, memory and sockets from /proc), ``processes`` (the simulator
and gunicorn as child processes), ``scenarios`` (what each scenario sends),
``analysis`` (figures from the responses and the simulator's stats),
``targets`` (issue 19's targets), ``report`` (JSON and Markdown), ``plots``
(PNG) and ``profile`` (py-spy). See bench/README.md.

This package depends on nothing in ``tests/`` or ``jimeng_api/``: the stdlib,
gevent and (for the plots) matplotlib. Importing it does not patch anything;
``python -m bench`` applies gevent's monkey patching first.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MODEL = "jimeng-4.0"


class BenchError(RuntimeError):
    """A setup problem worth a clear message (not a measurement)."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
