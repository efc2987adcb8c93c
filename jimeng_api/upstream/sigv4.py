"""AWS SigV4 for the ImageX calls (protocol doc §5.5's SigV4 table): pure
functions, checked against the doc's test vectors."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "imagex"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: SigV4 query values are not re-encoded (§5.5): only these characters are safe
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._-]*")


def amz_date(now: float | None = None) -> str:
    """``YYYYMMDD'T'HHMMSS'Z'`` (UTC) for ``x-amz-date``."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def canonical_query(params: Mapping[str, str]) -> str:
    """Parameters sorted by key (byte order), ``k=v`` joined by ``&``; values
    are sent and signed as they are, so only ``[A-Za-z0-9._-]`` is allowed."""
    for key, value in params.items():
        if not _SAFE_VALUE.fullmatch(key) or not _SAFE_VALUE.fullmatch(value):
            raise ValueError(f"unsafe ImageX query parameter {key!r}")
    return "&".join(f"{k}={params[k]}" for k in sorted(params))


def signed_header_names(method: str, body: bytes | None) -> list[str]:
    names = ["x-amz-date", "x-amz-security-token"]
    if method.upper() == "POST" and body is not None:
        names.insert(0, "x-amz-content-sha256")
    return names


def canonical_request(
    method: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes | None,
) -> str:
    """The SigV4 canonical request: URI ``/``, the signed headers in order."""
    names = signed_header_names(method, body)
    lines = "".join(f"{name}:{headers[name].strip()}\n" for name in names)
    payload = hashlib.sha256(body).hexdigest() if body is not None else EMPTY_SHA256
    return "\n".join(
        [method.upper(), "/", canonical_query(params), lines, ";".join(names), payload]
    )


def credential_scope(date: str, region: str, service: str = SERVICE) -> str:
    return f"{date[:8]}/{region}/{service}/aws4_request"


def string_to_sign(date: str, scope: str, creq: str) -> str:
    digest = hashlib.sha256(creq.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{date}\n{scope}\n{digest}"


def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sigv4_headers(
    method: str,
    params: Mapping[str, str],
    *,
    access_key: str,
    secret_key: str,
    session_token: str,
    region: str,
    date: str,
    body: bytes | None = None,
    service: str = SERVICE,
) -> dict[str, str]:
    """Return the headers that sign one ImageX call (§5.5's SigV4 table):
    ``x-amz-date``, ``x-amz-security-token``, ``x-amz-content-sha256`` (a POST
    with a body) and ``authorization``."""
    headers = {"x-amz-date": date, "x-amz-security-token": session_token}
    if method.upper() == "POST" and body is not None:
        headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    creq = canonical_request(method, params, headers, body)
    scope = credential_scope(date, region, service)
    key = signing_key(secret_key, date, region, service)
    signature = hmac.new(
        key, string_to_sign(date, scope, creq).encode("utf-8"), hashlib.sha256
    ).hexdigest()
    names = ";".join(signed_header_names(method, body))
    headers["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    return headers
