"""CLI: ``python -m simulator --host 127.0.0.1 --port 8001 [knobs]``."""

import warnings

from gevent import monkey

# ``python -m`` imports the package (``simulator/__init__``) first, so some
# modules are loaded before patching. It serves plain HTTP: late ssl patching is moot.
warnings.filterwarnings("ignore", category=monkey.MonkeyPatchWarning)
monkey.patch_all()

import argparse  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from .app import create_simulator  # noqa: E402
from .server import serve_gevent  # noqa: E402
from .settings import add_arguments, from_namespace  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Offline simulator of the Jimeng web upstream (gevent server).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 = any free port")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    add_arguments(parser)
    ns = parser.parse_args(argv)
    try:
        settings = from_namespace(ns)
    except ValueError as exc:
        parser.error(str(exc))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve_gevent(create_simulator(settings), ns.host, ns.port, ns.access_log)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
