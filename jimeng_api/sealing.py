"""How account tokens are kept in the store: sealed, never in clear.

A job must be finishable by any worker or host, so the token it was submitted
with is stored with it, encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from
the ``cryptography`` package) under ``STORE_SECRET``. Without that setting the
key is generated once into ``DATA_DIR/store.key`` (mode 0600): enough for one
host; several hosts on one Redis must share ``STORE_SECRET``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections import OrderedDict

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "store.key"
OPENED_CACHE = 4096  # sealed values this process opened (or sealed) lately


class Sealer:
    """Encrypts and decrypts lists of tokens."""

    def __init__(self, secret: str) -> None:
        digest = hashlib.sha256(b"jimeng-api-store:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        # the same job's tokens are opened several times (submit, poll, each
        # adoption): each value is decrypted once per process (the tokens are
        # in this process's memory anyway while it works on them)
        self._opened: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def seal(self, tokens: list[str]) -> str:
        sealed = self._fernet.encrypt(json.dumps(tokens).encode()).decode()
        self._remember(sealed, tuple(tokens))
        return sealed

    def unseal(self, sealed: str | None) -> list[str]:
        """Return the tokens, or [] if *sealed* is absent or was sealed under
        another secret (the job then cannot be continued here)."""
        if not sealed:
            return []
        with self._lock:
            opened = self._opened.get(sealed)
            if opened is not None:
                self._opened.move_to_end(sealed)
                return list(opened)
        try:
            tokens = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            return []
        kept = tuple(t for t in tokens if isinstance(t, str))
        self._remember(sealed, kept)
        return list(kept)

    def _remember(self, sealed: str, tokens: tuple[str, ...]) -> None:
        with self._lock:
            self._opened[sealed] = tokens
            while len(self._opened) > OPENED_CACHE:
                self._opened.popitem(last=False)


def load_secret(configured: str, data_dir: str) -> str:
    """Return ``STORE_SECRET``, or the host's generated key (created once)."""
    if configured:
        return configured
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, KEY_FILE)
    if not os.path.exists(path):
        # written aside, then linked into place: a worker starting at the same
        # moment reads either no file or a whole one, never half of it
        temp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(base64.urlsafe_b64encode(os.urandom(32)).decode())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
    with open(path, encoding="ascii") as file:
        return file.read().strip()
