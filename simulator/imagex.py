"""ImageX upload helpers (protocol §5.5): AWS SigV4 as Jimeng uses it, and CRC32."""

from __future__ import annotations

import hashlib
import hmac
import zlib
from dataclasses import dataclass

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def canonical_query(query: str | dict[str, str]) -> str:
    """Sort ``k=v`` pairs by key (byte order); values are *not* re-encoded."""
    if isinstance(query, dict):
        pairs = [(k, str(v)) for k, v in query.items()]
    else:
        pairs = []
        for part in query.split("&"):
            if part:
                key, _, value = part.partition("=")
                pairs.append((key, value))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs, key=lambda p: p[0]))


def canonical_request(
    method: str,
    query: str | dict[str, str],
    headers: dict[str, str],
    signed: list[str],
    payload_hash: str,
) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    header_lines = "".join(f"{name}:{lower.get(name, '').strip()}\n" for name in signed)
    return "\n".join(
        [
            method.upper(),
            "/",
            canonical_query(query),
            header_lines,
            ";".join(signed),
            payload_hash,
        ]
    )


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sign(
    method: str,
    query: str | dict[str, str],
    headers: dict[str, str],
    access_key: str,
    secret_key: str,
    region: str = "cn-north-1",
    service: str = "imagex",
    payload: bytes | None = None,
) -> str:
    """Return the ``Authorization`` header value for the request (§5.5 rules).

    *headers* must contain ``x-amz-date`` and ``x-amz-security-token``; for a POST
    with a body also ``x-amz-content-sha256``.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    signed = ["x-amz-date", "x-amz-security-token"]
    if payload is not None and method.upper() == "POST":
        signed.insert(0, "x-amz-content-sha256")
    payload_hash = hashlib.sha256(payload or b"").hexdigest()
    amz_date = lower["x-amz-date"]
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    creq = canonical_request(method, query, lower, signed, payload_hash)
    signature = _signature(secret_key, amz_date, scope, creq)
    return (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )


def string_to_sign(amz_date: str, scope: str, creq: str) -> str:
    digest = hashlib.sha256(creq.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _signature(secret: str, amz_date: str, scope: str, creq: str) -> str:
    date, region, service, _ = scope.split("/")
    key = signing_key(secret, date, region, service)
    sts = string_to_sign(amz_date, scope, creq)
    return hmac.new(key, sts.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class ParsedAuth:
    access_key: str
    scope: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> ParsedAuth:
    """Parse ``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ValueError("unsupported algorithm")
    fields = {}
    for part in rest.split(","):
        key, _, val = part.strip().partition("=")
        fields[key] = val
    credential = fields.get("Credential", "")
    access_key, _, scope = credential.partition("/")
    if not access_key or scope.count("/") != 3:
        raise ValueError("bad Credential")
    signed = fields.get("SignedHeaders", "")
    if not signed or not fields.get("Signature"):
        raise ValueError("missing SignedHeaders or Signature")
    return ParsedAuth(access_key, scope, signed.split(";"), fields["Signature"])


def verify(
    method: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    secret_key: str,
    region: str = "cn-north-1",
    service: str = "imagex",
) -> str | None:
    """Check a request's SigV4; return None when valid, else the reason."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        auth = parse_authorization(lower.get("authorization", ""))
    except ValueError as exc:
        return f"authorization: {exc}"
    amz_date = lower.get("x-amz-date", "")
    expected_scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    if auth.scope != expected_scope:
        return f"credential scope {auth.scope!r} != {expected_scope!r}"
    required = ["x-amz-date", "x-amz-security-token"]
    payload_hash = EMPTY_SHA256
    if method.upper() == "POST":
        required.insert(0, "x-amz-content-sha256")
        payload_hash = hashlib.sha256(body).hexdigest()
        if lower.get("x-amz-content-sha256", "").lower() != payload_hash:
            return "x-amz-content-sha256 does not match the body"
    if auth.signed_headers != required:
        return f"SignedHeaders {';'.join(auth.signed_headers)} != {';'.join(required)}"
    creq = canonical_request(method, raw_query, lower, required, payload_hash)
    if not hmac.compare_digest(
        _signature(secret_key, amz_date, auth.scope, creq), auth.signature.lower()
    ):
        return "SigV4 signature mismatch"
    return None


def crc32_hex(data: bytes) -> str:
    """Lower-case, zero-padded CRC-32 (what [IP] sends in Content-CRC32)."""
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


def crc32_matches(header_value: str, data: bytes) -> bool:
    """Compare a Content-CRC32 header numerically (any case, padded or not)."""
    try:
        return int(header_value.strip(), 16) == zlib.crc32(data) & 0xFFFFFFFF
    except ValueError:
        return False
