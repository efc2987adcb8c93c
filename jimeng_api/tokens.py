"""Session ids: parsing the Bearer header, one bounded ``requests.Session`` per id,
and bounded memory of which ids are cooling down."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

import requests
from requests.adapters import HTTPAdapter

from .errors import AuthenticationError, InvalidRequestError
from .logs import token_id

# Session ids are short ASCII words; anything else (';', '=', spaces, non-ASCII)
# could inject cookies or headers, so it is refused before it reaches upstream.
_TOKEN = re.compile(r"^[A-Za-z0-9._:+/-]{1,256}$")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def parse_bearer(header: str | None, limit: int) -> list[str]:
    """Split ``Bearer a, b,c`` into ``["a", "b", "c"]`` (scheme case-insensitive)."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError()
    tokens = list(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    if not tokens:
        raise AuthenticationError()
    if len(tokens) > limit:
        raise InvalidRequestError(
            f"Too many session ids in Authorization ({len(tokens)}; limit {limit}).",
            param="Authorization",
        )
    if not all(_TOKEN.match(token) for token in tokens):
        raise AuthenticationError(
            "Malformed session id in Authorization: use the value of the "
            "'sessionid' cookie (letters, digits, '-', '_', '.')."
        )
    return tokens


class BoundedMap(Generic[K, V]):
    """A dict that forgets its least recently used entries beyond *maxsize*."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            if key not in self._data:
                return default
            self._data.move_to_end(key)
            return self._data[key]

    def setdefault(self, key: K, factory: Callable[[], V]) -> V:
        """Return the value for *key*, creating it with *factory* if absent."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            value = self._data[key] = factory()
            self._evict()
            return value

    def set(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            self._evict()

    def _evict(self) -> None:
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._data.pop(key, None)


class SessionPool:
    """One ``requests.Session`` per session id, least recently used ones dropped.

    A session holds what is particular to an account (headers, cookie, web ids);
    all of them share one bounded connection pool to Jimeng, so neither memory
    nor sockets grow with the number of accounts, and dropping a session costs
    no connection.
    """

    def __init__(
        self,
        maxsize: int,
        pool_maxsize: int,
        prepare: Callable[[requests.Session, str], None],
    ) -> None:
        self._sessions: BoundedMap[str, requests.Session] = BoundedMap(maxsize)
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize)
        self._prepare = prepare

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, token: str) -> requests.Session:
        """Return the session for *token*, creating it on first use."""
        return self._sessions.setdefault(token, lambda: self._new_session(token))

    def _new_session(self, token: str) -> requests.Session:
        session = requests.Session()
        session.mount("http://", self._adapter)
        session.mount("https://", self._adapter)
        session.headers.clear()
        session.trust_env = False  # no proxy or netrc surprises for a secret cookie
        self._prepare(session, token)
        return session


class Cooldowns:
    """Session ids that recently failed for account reasons, remembered for a while."""

    def __init__(self, seconds: float, maxsize: int = 10000) -> None:
        self.seconds = seconds
        self._until: BoundedMap[str, float] = BoundedMap(maxsize)

    def __len__(self) -> int:
        return len(self._until)

    def mark(self, token: str, seconds: float | None = None) -> None:
        """Skip *token* for *seconds* (default: the configured cooldown)."""
        delay = self.seconds if seconds is None else seconds
        self._until.set(token_id(token), time.monotonic() + delay)

    def clear(self, token: str) -> None:
        self._until.pop(token_id(token))

    def cooling(self, token: str) -> bool:
        """Return whether *token* is still cooling down."""
        until = self._until.get(token_id(token))
        return until is not None and until > time.monotonic()

    def order(self, tokens: Iterable[str], first: int = 0) -> list[str]:
        """Rotate *tokens* to start at *first*; cooling ones move to the end."""
        tokens = list(tokens)
        rotated = tokens[first:] + tokens[:first]
        ready = [t for t in rotated if not self.cooling(t)]
        return ready + [t for t in rotated if self.cooling(t)]
