#!/usr/bin/env python3
"""Wait until the service answers GET /ping on $HOST:$PORT (stdlib only).

    wait-ready.py [SECONDS]      # default 60; exit 0 when it answers, 1 if not

The systemd unit runs this as ExecStartPost=. gunicorn tells systemd READY=1
when its master has booted, but with reuse_port each worker binds the port
itself a moment later; without this, `systemctl start` (and the `curl` right
after it in the README's recipe) could come before anything listens.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request

WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "::1"}


def ping_url() -> str:
    host = os.environ.get("HOST", "0.0.0.0").strip()
    host = WILDCARDS.get(host, host).strip("[]")
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{os.environ.get('PORT', '8000').strip()}/ping"


def main(argv: list[str]) -> int:
    deadline = time.monotonic() + (float(argv[0]) if argv else 60.0)
    url = ping_url()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return 0
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() >= deadline:
            print(f"wait-ready: {url} did not answer", file=sys.stderr)
            return 1
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
