"""Wire helpers shared by the simulator's routes: Sign, JSON, replies, resets."""

from __future__ import annotations

import errno
import hashlib
import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response


def compute_sign(path: str, pf: str, appvr: str, device_time: str) -> str:
    """The ``Sign`` header of protocol §1.6."""
    text = f"9e2c|{path[-7:]}|{pf}|{appvr}|{device_time}||11ac"
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status, content_type="application/json; charset=utf-8")


def version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


@dataclass
class Reply:
    """What a Jimeng handler answers, before the family's envelope is applied."""

    ret: str = "0"
    errmsg: str = "success"
    data: Any = None
    raw: Any = None  # passport: the whole body (no envelope)


@dataclass
class Ctx:
    request: Request
    endpoint: str
    family: str
    session: str = ""
    faults: set[str] = field(default_factory=set)


def reset_connection(environ: dict) -> None:
    """Abort the connection: SO_LINGER 0 makes the server's close send a TCP RST.

    The socket comes from ``sim.socket`` (our gevent handler), ``werkzeug.socket``
    (werkzeug's server) or ``gunicorn.socket``. The raised ECONNRESET makes the
    server drop the connection without writing a response.
    """
    for key in ("sim.socket", "werkzeug.socket", "gunicorn.socket"):
        sock = environ.get(key)
        if sock is not None:
            try:
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            except OSError:
                pass
            break
    raise ConnectionResetError(errno.ECONNRESET, "simulated connection reset")
