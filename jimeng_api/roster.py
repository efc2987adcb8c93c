"""Where accounts come from: the caller's Bearer (passthrough mode) or the
server's pool (``JIMENG_SESSION_IDS`` plus ``JIMENG_SESSION_FILE``, reread on
SIGHUP or when the file changes).

A pool entry is a token (``upstream/tokens.py``: a session id or cookie
string, maybe ``us-``/``hk-``/``jp-``/``sg-``-prefixed, maybe ``proxy@``-
prefixed). A file line may also name its site and proxy in leading columns::

    # comments and blank lines are ignored
    0123456789abcdef0123456789abcdef
    us-0123456789abcdef0123456789abcdef
    socks5://user:pass@10.0.0.2:1080@sg-0123456789abcdef0123456789abcdef
    us   http://user:pass@10.0.0.3:3128   0123456789abcdef0123456789abcdef
    jp   sessionid=0123…; ttwid=…; odin_tt=…

Tokens, session ids and proxy URLs of the pool are registered with the log
filter, so none of them is ever logged.

A missing or unreadable session file never stops the service: the last good
list (and the other sources) stay in use, loudly logged and shown in
``/metrics`` and ``/health``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from serving import redact

from . import metrics
from .errors import AuthenticationError, InvalidRequestError
from .logs import token_id
from .upstream.sites import CN, REGIONS
from .upstream.tokens import (
    PROXY_SCHEMES,
    InvalidProxyError,
    account_id,
    join_token,
    parse_proxy,
    session_id,
    split_token,
)

log = logging.getLogger(__name__)

FILE_CHECK_INTERVAL = 5.0  # seconds between two stat() calls on the session file
MALFORMED = (
    "Malformed session id in Authorization: use the value of the 'sessionid' "
    "cookie (letters, digits, '-', '_', '.'), or the whole cookie string."
)
CLIENT_PROXY = (
    "A proxy in Authorization (proxy@token) is not accepted by this server "
    "(ALLOW_CLIENT_PROXIES is off)."
)

_rosters: weakref.WeakSet[Roster] = weakref.WeakSet()


def parse_bearer(
    header: str | None, limit: int, *, allow_proxies: bool = False
) -> list[str]:
    """Split ``Bearer a, b,c`` into ``["a", "b", "c"]`` (scheme case-insensitive).

    A token that names a proxy is refused unless *allow_proxies*: the server
    would open connections wherever the caller says."""
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
    if not all(session_id(token) for token in tokens):
        raise AuthenticationError(MALFORMED)
    if not allow_proxies and any(_names_proxy(token) for token in tokens):
        raise AuthenticationError(CLIENT_PROXY)
    return tokens


_PROXY_STARTS = tuple(f"{scheme}://" for scheme in PROXY_SCHEMES)


def _names_proxy(token: str) -> bool:
    account = split_token(token)
    return bool(account and account.proxy)


def parse_pool_line(line: str) -> str | None:
    """Return the token of one pool line (``[REGION] [PROXY] TOKEN``, columns in
    any order, or a token with its own prefixes), or None if it is not one."""
    region: str | None = None
    proxy: str | None = None
    rest = line.strip()
    while True:
        head, _, tail = rest.partition(" ") if " " in rest else (rest, "", "")
        head, tail = head.strip(), tail.strip()
        if not tail:
            break
        if region is None and head.lower() in REGIONS:
            region, rest = head.lower(), tail
        elif proxy is None and head.lower().startswith(_PROXY_STARTS):
            try:
                proxy = parse_proxy(head).url
            except InvalidProxyError:
                return None
            rest = tail
        else:
            break
    account = split_token(rest)
    if account is None or not session_id(rest):
        return None
    if (region and account.region != CN) or (proxy and account.proxy):
        return None  # said twice: which one was meant?
    own_proxy = account.proxy.url if account.proxy else None
    return join_token(account.credential, region or account.region, proxy or own_proxy)


def read_session_file(path: str) -> list[str]:
    """Return the tokens in *path*: one account a line (see the module
    docstring), ``#`` comments and blanks out."""
    with open(path, encoding="utf-8") as file:
        lines = [line.split("#", 1)[0].replace("\t", " ").strip() for line in file]
    tokens = []
    for number, line in enumerate(lines, 1):
        token = parse_pool_line(line) if line else None
        if line and token is None:
            log.warning("%s line %d is not a pool entry; skipped", path, number)
        elif token:
            tokens.append(token)
    return tokens


def register_pool_secrets(tokens: list[str]) -> None:
    """Mask every pooled token, its session id and its proxy URL in all logs."""
    secrets: list[str] = []
    for token in tokens:
        account = split_token(token)
        secrets.append(token)
        if account:
            secrets.append(account.credential)
            secrets.append(session_id(token) or "")
            if account.proxy:
                secrets.append(account.proxy.url)
    redact.register_secrets(secrets)


class Roster:
    """The pooled accounts: configured order, reloads, lookup by account id."""

    def __init__(
        self,
        config: Any,
        remember: Callable[[list[str]], None] | None = None,
        recall: Callable[[], list[str]] | None = None,
    ) -> None:
        """*remember*/*recall* keep the last good file outside this process (in
        the store, sealed), so a worker that starts while the file is missing
        still has it."""
        self.remember = remember or (lambda tokens: None)
        self.recall = recall or list
        self.path = config["JIMENG_SESSION_FILE"]
        self.limit = config["MAX_TOKENS_PER_REQUEST"]
        self.check_interval = FILE_CHECK_INTERVAL
        configured = config["JIMENG_SESSION_IDS"]
        self._fixed = [t for t in configured if session_id(t)]
        if len(self._fixed) < len(configured):
            log.warning("JIMENG_SESSION_IDS: entries that are not session ids skipped")
        self._tokens: list[str] = []
        self._by_account: dict[str, str] = {}
        self._file_stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._reload_requested = False
        self.file_ok = True
        self.reload()

    def reload(self) -> None:
        """Reread the session file; on failure keep the last good list."""
        self._checked = time.monotonic()
        self._reload_requested = False
        from_file = [t for t in self._tokens if t not in self._fixed]
        if self.path:
            try:
                self._file_stamp = self._stamp()
                from_file = read_session_file(self.path)
                self.file_ok = True
                self.remember(from_file)
            except (OSError, UnicodeError) as exc:  # never show the file's content
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                log.error(
                    "JIMENG_SESSION_FILE=%r could not be read (%s): serving with "
                    "the last good list and JIMENG_SESSION_IDS",
                    self.path,
                    reason,
                )
                self.file_ok = False
                from_file = from_file or self.recall()
        tokens = list(dict.fromkeys(self._fixed + from_file))
        register_pool_secrets(tokens)
        if tokens != self._tokens:
            names = ", ".join(token_id(t) for t in tokens) or "none"
            log.info("session pool: %d sessions (%s)", len(tokens), names)
        self._tokens = tokens
        self._by_account = {account_id(t): t for t in tokens}
        metrics.session_file_ok(self.file_ok)

    def request_reload(self) -> None:
        """Reload on next use (safe in a signal handler: no lock, no I/O)."""
        self._reload_requested = True

    def tokens(self) -> list[str]:
        """Return every pooled token, in configured order."""
        if self._reload_requested or self._file_changed():
            self.reload()
        return list(self._tokens)

    def token_for(self, account: str) -> str | None:
        """Return the pooled token of the account named *account* (its id)."""
        self.tokens()
        return self._by_account.get(account)

    def _stamp(self) -> tuple[int, int, int]:
        info = os.stat(self.path)
        return info.st_mtime_ns, info.st_size, info.st_ino

    def _file_changed(self) -> bool:
        """stat() the file at most every ``check_interval`` seconds."""
        now = time.monotonic()
        if not self.path or now - self._checked < self.check_interval:
            return False
        self._checked = now
        try:
            return self._stamp() != self._file_stamp
        except OSError:
            return self.file_ok  # gone: reload logs why


def _on_sighup(signum: int, frame: Any) -> None:
    for roster in list(_rosters):
        roster.request_reload()


def reload_on_sighup(roster: Roster) -> None:
    """Install the SIGHUP handler (main thread only; once per process)."""
    _rosters.add(roster)
    if not hasattr(signal, "SIGHUP"):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGHUP) is not _on_sighup:
        try:
            signal.signal(signal.SIGHUP, _on_sighup)
        except ValueError:  # not the main thread after all
            pass


def pooled(config: Any) -> bool:
    """Return whether the server holds the accounts itself."""
    return bool(config["JIMENG_SESSION_IDS"] or config["JIMENG_SESSION_FILE"])
