"""Keep secrets and control characters out of every log line.

``SecretFilter`` is a ``logging.Filter`` for handlers (a filter on a handler sees
every record that reaches it, propagated ones included). It rewrites the message,
its arguments and the formatted traceback:

- values of secret-looking names (``sessionid=…``, ``"token": "…"``, ``api_key=…``,
  ``Cookie: …``, ``Authorization: …``, ``Bearer …``) become ``***``;
- credentials in URLs (``http://user:pass@proxy``) become ``***@``;
- registered secrets (API keys, pooled session ids, the bearer tokens of the
  request being served) become ``…<8-hex id>`` wherever they appear;
- control characters (``\\n``, ``\\r``, ``\\x00``, ESC, U+2028 …) in the message
  are escaped, so a request cannot forge a log line. Tracebacks keep their line
  breaks but lose every other control character.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from contextvars import ContextVar

__all__ = [
    "SecretFilter",
    "escape_control",
    "install",
    "redact",
    "register_secrets",
    "request_secrets",
    "secret_id",
]

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter literals would mask ordinary words

# names whose values are secrets, in query strings, cookies, JSON, headers, kwargs
_NAME = (
    r"[A-Za-z0-9_.-]*(?:session|token|secret|passw(?:or)?d|api[_-]?key|apikey"
    r"|signature|credential|private[_-]?key)[A-Za-z0-9_.-]*"
    r"|sid(?:_[a-z]+)?|uid_tt(?:_ss)?|key|sig|auth|x-amz-security-token"
)
_KEY_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_-])((?:{_NAME}))"  # the name
    r"([\"']?\s*[=:]\s*[\"']?|%3D)"  # = or : (maybe quoted, maybe url-encoded)
    r"(?!\*\*\*)([^\s;,&'\"<>\\)\]}]+)"  # the value
)
_WHOLE_VALUE = re.compile(  # header-like fields whose whole value is a secret
    r"(?i)\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key)"
    r"([\"']?\s*[:=]\s*[\"']?)([^\"'\r\n]+)"
)
_SCHEME_TOKEN = re.compile(
    r"(?i)\b(bearer|basic|digest)(\s+)([^\s\"',;]+(?:,[^\s\"',;]+)*)"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"'<>]+@")

# C0, DEL, C1 and the Unicode line/paragraph separators
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
_CONTROL_BUT_NEWLINE = {c: v for c, v in _CONTROL.items() if c != 0x0A}

_static_secrets: set[str] = set()
_static_pattern: re.Pattern[str] | None = None
request_secrets: ContextVar[tuple[str, ...]] = ContextVar("request_secrets", default=())


def secret_id(secret: str) -> str:
    """Return a short, stable, irreversible name for *secret* (8 hex digits)."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:8]


def escape_control(text: str, *, keep_newlines: bool = False) -> str:
    """Return *text* with control characters written as ``\\xNN`` escapes."""
    return text.translate(_CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL)


def register_secrets(secrets: Iterable[str]) -> None:
    """Mask these literal values (API keys, pooled session ids…) in every record."""
    global _static_pattern
    new = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
    if new - _static_secrets:
        _static_secrets.update(new)
        _static_pattern = _literal_pattern(_static_secrets)


def _literal_pattern(secrets: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(secrets, key=len, reverse=True)  # longest first
    return re.compile("|".join(map(re.escape, ordered)))


def _mask_literals(text: str) -> str:
    if _static_pattern is not None:
        text = _static_pattern.sub(lambda m: "…" + secret_id(m.group()), text)
    current = [s for s in request_secrets.get() if len(s) >= MIN_SECRET_LENGTH]
    for secret in current:
        if secret in text:
            text = text.replace(secret, "…" + secret_id(secret))
    return text


def redact(text: str) -> str:
    """Return *text* with every secret-looking value masked."""
    if not text:
        return text
    text = _mask_literals(text)
    text = _URL_USERINFO.sub(rf"\1{MASK}@", text)
    text = _WHOLE_VALUE.sub(rf"\1\2{MASK}", text)
    text = _SCHEME_TOKEN.sub(rf"\1\2{MASK}", text)
    return _KEY_VALUE.sub(rf"\1\2{MASK}", text)


class SecretFilter(logging.Filter):
    """Rewrite each record so that no secret or control character gets logged."""

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__()
        self._formatter = formatter or logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log it raw rather than lose it
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = escape_control(redact(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            clean = escape_control(redact(record.exc_text), keep_newlines=True)
            record.exc_text = clean
            record.exc_info = None  # formatters must use the redacted text
        if record.stack_info:
            clean = redact(record.stack_info)
            record.stack_info = escape_control(clean, keep_newlines=True)
        return True


def install(loggers: Iterable[logging.Logger | str] = ()) -> int:
    """Attach one ``SecretFilter`` to every handler of the root logger, of every
    known logger and of *loggers*; return how many handlers got one."""
    manager = logging.Logger.manager
    known = [logging.getLogger()]
    known += [
        lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    known += [logging.getLogger(lg) if isinstance(lg, str) else lg for lg in loggers]
    added = 0
    for logger in known:
        for handler in logger.handlers:
            if not any(isinstance(f, SecretFilter) for f in handler.filters):
                handler.addFilter(SecretFilter(handler.formatter))
                added += 1
    return added
