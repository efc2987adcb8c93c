"""What a token says: its site, its proxy, its session id, and the cookies it
stands for.

A token is what the caller pastes: a bare ``sessionid`` value or a whole cookie
string from the browser (``sessionid=…; ttwid=…; odin_tt=…``), optionally
prefixed (protocol doc §7, the iptag fork's syntax):

* ``us-`` / ``hk-`` / ``jp-`` / ``sg-`` (any case): the account lives on that
  Dreamina site; the prefix is removed before the cookie is built;
* ``http://[user:pass@]host:port@`` (also ``https``, ``socks4``, ``socks4a``,
  ``socks5``, ``socks5h``; split at the **last** ``@``): every call of the
  account goes through that proxy (``UPSTREAM_PROXY`` when it names none).

So ``socks5://u:p@10.0.0.2:1080@us-0123abcd`` is a US account behind a SOCKS
proxy. The session id (and the site) is the account's identity: the same
account keeps its id when its proxy changes. A pasted cookie jar is sent as it
is, completed with what the site always needs. ``webId`` in the query and the
``_tea_web_id`` cookie come from one value (a mismatch is a risk-control
trigger, protocol-2026-12 §2); Dreamina sites send no ``webId``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from config import DEFAULT_COOKIES, parse_cookie_template

from .sites import CN

# A bare session id is a short ASCII word; anything else (';', '=', spaces,
# newlines) could inject cookies or headers, so it is refused. ``fullmatch``: a
# trailing newline does not pass (``$`` would let it).
SESSION_ID = re.compile(r"[A-Za-z0-9._:+/-]{1,256}")
_COOKIE_NAME = re.compile(r"[A-Za-z0-9_.!#$%&'*+^`|~-]{1,128}")
_COOKIE_VALUE = re.compile(r"[\x21-\x2b\x2d-\x3a\x3c-\x7e]{0,4096}")  # no , ; space
MAX_COOKIE_STRING = 8192
SESSION_COOKIES = ("sessionid", "sessionid_ss", "sid_tt")

_REGION_PREFIX = re.compile(r"(us|hk|jp|sg)-(?=.)", re.IGNORECASE | re.DOTALL)
#: proxy schemes requests speaks (SOCKS through its ``requests[socks]`` extra)
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
_PROXY_PREFIX = re.compile(r"(https?|socks4a?|socks5h?)://", re.IGNORECASE)
_PROXY_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
_PROXY_USERINFO = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=:-]{1,512}")
MAX_PROXY_URL = 1024


class InvalidProxyError(ValueError):
    """A proxy URL that cannot be used (its text is never in the message)."""


@dataclass(frozen=True)
class Proxy:
    """An outbound proxy: the URL requests needs, and what may be shown of it."""

    url: str  # with credentials: never log it
    scheme: str
    host: str
    port: int | None
    has_credentials: bool

    @property
    def masked(self) -> str:
        """``socks5://***@host:1080``: safe to show and to log."""
        auth = "***@" if self.has_credentials else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{auth}{self.host}{port}"


def parse_proxy(text: str) -> Proxy:
    """Parse ``scheme://[user:pass@]host[:port]``; raise InvalidProxyError."""
    text = text.strip()
    if len(text) > MAX_PROXY_URL or not _PROXY_PREFIX.match(text):
        raise InvalidProxyError(
            f"a proxy URL must start with one of {', '.join(PROXY_SCHEMES)}://"
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if parts.path not in ("", "/") or parts.query or parts.fragment or "#" in text:
        raise InvalidProxyError("a proxy URL has no path, query or fragment")
    userinfo, _, hostport = netloc.rpartition("@")
    if userinfo and not _PROXY_USERINFO.fullmatch(userinfo):
        raise InvalidProxyError(
            "the proxy credentials have characters that must be %-encoded"
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise InvalidProxyError("the proxy port is not a number in 1..65535") from None
    shown = hostport.rsplit(":", 1)[0] if port else hostport
    if not host or not _PROXY_HOST.fullmatch(shown):
        raise InvalidProxyError("the proxy URL names no valid host")
    if port == 0:
        raise InvalidProxyError("the proxy port is not a number in 1..65535")
    url = f"{scheme}://{netloc}"
    return Proxy(url, scheme, shown, port, bool(userinfo))


@dataclass(frozen=True)
class Account:
    """What a token says: the site, the proxy (if any) and the credential."""

    region: str  # cn, us, hk, jp, sg
    proxy: Proxy | None
    credential: str  # a bare session id or a cookie string, prefixes removed

    @property
    def prefix(self) -> str:
        return "" if self.region == CN else self.region + "-"


def split_token(token: str) -> Account | None:
    """Split a token into its proxy, its site and its credential; None when it
    names a proxy that cannot be used."""
    proxy = None
    rest = token
    if _PROXY_PREFIX.match(token) and "@" in token:
        proxy_text, _, rest = token.rpartition("@")
        if not rest:
            return None
        try:
            proxy = parse_proxy(proxy_text)
        except InvalidProxyError:
            return None
    region = CN
    match = _REGION_PREFIX.match(rest)
    if match:
        region, rest = match.group(1).lower(), rest[match.end() :]
    return Account(region, proxy, rest)


def join_token(credential: str, region: str = CN, proxy: str | None = None) -> str:
    """The token that says *credential* lives on *region* behind *proxy*."""
    prefix = "" if region == CN else f"{region}-"
    return f"{proxy}@{prefix}{credential}" if proxy else prefix + credential


def parse_cookie_string(text: str) -> dict[str, str] | None:
    """Return the cookies of a pasted cookie string, or None if it is not one."""
    if "=" not in text or len(text) > MAX_COOKIE_STRING:
        return None
    cookies: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if not part.strip():
            continue
        if not sep or not _COOKIE_NAME.fullmatch(name):
            return None
        if not _COOKIE_VALUE.fullmatch(value.strip()):
            return None
        cookies[name] = value.strip()
    return cookies


def _credential_session(credential: str) -> str | None:
    if SESSION_ID.fullmatch(credential):
        return credential
    cookies = parse_cookie_string(credential)
    if not cookies:
        return None
    for name in SESSION_COOKIES:
        value = cookies.get(name, "")
        if SESSION_ID.fullmatch(value):
            return value
    return None


def session_id(token: str) -> str | None:
    """Return the session id a token stands for (region prefix and proxy
    removed), or None if it is malformed."""
    account = split_token(token)
    return _credential_session(account.credential) if account else None


def region_of(token: str) -> str:
    """Return the site of *token*: ``cn`` or one of DREAMINA_REGIONS."""
    account = split_token(token)
    return account.region if account else CN


def proxy_of(token: str) -> Proxy | None:
    """Return the proxy *token* names itself (not UPSTREAM_PROXY)."""
    account = split_token(token)
    return account.proxy if account else None


def account_id(token: str) -> str:
    """Return the short, irreversible name of the account behind *token*: the
    same for a bare session id and for a cookie string that carries it, and
    whatever proxy the token names; a Dreamina account is named with its site
    (``us-abc`` is not ``abc``), so a CN token keeps the id it always had."""
    account = split_token(token)
    session = _credential_session(account.credential) if account else None
    identity = account.prefix + session if account and session else token
    return hashlib.sha256(identity.encode("utf-8", "replace")).hexdigest()[:8]


def describe(token: str, default_proxy: str = "") -> dict[str, Any]:
    """What a status page may show of a token: its site and its proxy, masked
    (``None``: direct)."""
    account = split_token(token)
    proxy = account.proxy if account else None
    if proxy is None and default_proxy:
        try:
            proxy = parse_proxy(default_proxy)
        except InvalidProxyError:
            proxy = None
    return {
        "region": account.region if account else CN,
        "proxy": proxy.masked if proxy else None,
    }


def web_identity(session: str) -> tuple[str, str]:
    """Return a (web_id, user_id) pair derived from the session id: stable per
    account, different across accounts."""
    digest = hashlib.sha256(b"jimeng-api:" + session.encode()).digest()
    web_id = str(7 * 10**18 + int.from_bytes(digest[:8], "big") % 10**18)
    return web_id, digest[8:24].hex()


def cookie_jar(token: str, template: str = DEFAULT_COOKIES) -> dict[str, str]:
    """Return the cookies to send for *token*: ``JIMENG_COOKIES`` filled in,
    then a pasted cookie string's own cookies (the browser's values win, but
    the session id is the identity)."""
    account = split_token(token)
    credential = account.credential if account else token
    session = _credential_session(credential) or ""
    pasted = parse_cookie_string(credential) if credential != session else None
    web_id, user_id = web_identity(session)
    fields = {"session": session, "web_id": web_id, "user_id": user_id}
    jar = {
        name: value.format_map(fields)
        for name, value in parse_cookie_template(template)
    }
    if pasted:
        jar.update(pasted)
        jar["sessionid"] = session
    return jar
