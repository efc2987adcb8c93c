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

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "store.key"


class Sealer:
    """Encrypts and decrypts lists of tokens."""

    def __init__(self, secret: str) -> None:
        digest = hashlib.sha256(b"jimeng-api-store:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, tokens: list[str]) -> str:
        return self._fernet.encrypt(json.dumps(tokens).encode()).decode()

    def unseal(self, sealed: str | None) -> list[str]:
        """Return the tokens, or [] if *sealed* is absent or was sealed under
        another secret (the job then cannot be continued here)."""
        if not sealed:
            return []
        try:
            tokens = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            return []
        return [t for t in tokens if isinstance(t, str)]


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
