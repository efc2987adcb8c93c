"""What bounds one outbound fetch: a total deadline, a byte budget shared by the
bodies of one response, and the check that bytes are really an image."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import gevent

from .errors import ResponseTooLargeError


class DeadlineExceeded(Exception):
    """The total deadline of one fetch passed."""


# --- what the bytes are ----------------------------------------------------------


def sniff_image(data: bytes) -> str | None:
    """Return the image format *data* starts with (png, jpeg, gif, webp, avif,
    heic), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "heic"
    return None


# --- the total deadline ------------------------------------------------------------


def gevent_active() -> bool:
    """Whether sockets are gevent's (inside gunicorn's gevent workers)."""
    from gevent import monkey

    return monkey.is_module_patched("socket")


class Deadline:
    """A total deadline: ``remaining()`` for socket timeouts, and a watchdog that
    interrupts a blocked read (gevent.Timeout, or shutting the sockets down)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            self.expired = True
            raise DeadlineExceeded()
        return left

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
        if self.expired:
            self._expire()

    def _expire(self) -> None:
        self.expired = True
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @contextmanager
    def running(self) -> Iterator[Deadline]:
        if gevent_active():
            with gevent.Timeout(self.seconds, DeadlineExceeded):
                yield self
            return
        timer = threading.Timer(self.seconds, self._expire)
        timer.daemon = True
        timer.start()
        try:
            yield self
        finally:
            timer.cancel()


class Budget:
    """Bytes left for all the bodies of one response (``fetch_all``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        with self._lock:
            self.used += size
            over = self.used > self.limit
        if over:
            raise ResponseTooLargeError(
                f"The images of this response are larger than {self.limit} bytes "
                "in total (IMAGE_RESPONSE_MAX_BYTES); use response_format 'url' or "
                "ask for fewer images.",
                param="response_format",
            )
