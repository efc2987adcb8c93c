"""Per-account identity: which site, which cookies, headers and query, which proxy.

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
``Origin``/``Referer`` are the site's whatever host the calls go to (an
operator may point a base URL at a relay).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter

from config import DEFAULT_COOKIES, parse_cookie_template

# A bare session id is a short ASCII word; anything else (';', '=', spaces,
# newlines) could inject cookies or headers, so it is refused. ``fullmatch``: a
# trailing newline does not pass (``$`` would let it).
SESSION_ID = re.compile(r"[A-Za-z0-9._:+/-]{1,256}")
_COOKIE_NAME = re.compile(r"[A-Za-z0-9_.!#$%&'*+^`|~-]{1,128}")
_COOKIE_VALUE = re.compile(r"[\x21-\x2b\x2d-\x3a\x3c-\x7e]{0,4096}")  # no , ; space
MAX_COOKIE_STRING = 8192
SESSION_COOKIES = ("sessionid", "sessionid_ss", "sid_tt")

CN = "cn"
#: the Dreamina sites a token prefix selects (protocol doc §7)
DREAMINA_REGIONS = ("us", "hk", "jp", "sg")
REGIONS = (CN, *DREAMINA_REGIONS)
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


#: what differs between the Dreamina sites (protocol doc §7): the ``region``
#: query value, ``Lan``/``Loc``, and the ImageX host/SigV4 region
_DREAMINA: dict[str, dict[str, str]] = {
    "us": {"param": "US", "lang": "en", "loc": "us", "accept": "en-US,en;q=0.9"},
    "hk": {"param": "HK", "lang": "en", "loc": "hk", "accept": "en-US,en;q=0.9"},
    "jp": {"param": "JP", "lang": "ja", "loc": "jp", "accept": "ja-JP,ja;q=0.9"},
    "sg": {"param": "SG", "lang": "en", "loc": "sg", "accept": "en-US,en;q=0.9"},
}
IMAGEX_REGIONS = {"cn": "cn-north-1", "us": "us-east-1", "asia": "ap-southeast-1"}
CN_IMAGEX_URL = "https://imagex.bytedanceapi.com"
CN_SERVICE_ID = "tb4s082cfz"


@dataclass(frozen=True)
class Site:
    """The constants one site's browser client sends (protocol doc §1.7, §7)."""

    base_url: str
    origin: str
    config: Mapping[str, Any]
    region: str = CN
    commerce_url: str = ""  # "" = base_url

    @classmethod
    def from_config(cls, config: Mapping[str, Any], region: str = CN) -> Site:
        if region == CN:
            base = config["JIMENG_BASE_URL"]
            return cls(base, config["JIMENG_SITE_ORIGIN"], config, CN, base)
        if region not in _DREAMINA:
            raise ValueError(f"unknown site {region!r}")
        host = "US" if region == "us" else region.upper()
        base = config.get(f"DREAMINA_{host}_BASE_URL") or config["DREAMINA_SG_BASE_URL"]
        commerce = (
            config.get(f"DREAMINA_{host}_COMMERCE_URL")
            or config["DREAMINA_SG_COMMERCE_URL"]
        )
        return cls(base, config["DREAMINA_SITE_ORIGIN"], config, region, commerce)

    # --- per-site constants ---

    @property
    def dreamina(self) -> bool:
        return self.region != CN

    def _get(self, cn_key: str, dreamina_key: str) -> str:
        return self.config[dreamina_key if self.dreamina else cn_key]

    @property
    def app_id(self) -> str:
        return self._get("JIMENG_APP_ID", "DREAMINA_APP_ID")

    @property
    def app_version(self) -> str:
        return self._get("JIMENG_APP_VERSION", "DREAMINA_APP_VERSION")

    @property
    def region_param(self) -> str:
        return (
            _DREAMINA[self.region]["param"]
            if self.dreamina
            else self.config["JIMENG_REGION"]
        )

    @property
    def lang(self) -> str:
        return (
            _DREAMINA[self.region]["lang"]
            if self.dreamina
            else self.config["JIMENG_LANG"]
        )

    @property
    def loc(self) -> str:
        return (
            _DREAMINA[self.region]["loc"]
            if self.dreamina
            else self.config["JIMENG_LOC"]
        )

    @property
    def imagex_url(self) -> str:
        """Where uploads go (``get_upload_token`` grants the keys)."""
        if not self.dreamina:
            return self.config.get("JIMENG_IMAGEX_URL") or CN_IMAGEX_URL
        key = (
            "DREAMINA_US_IMAGEX_URL"
            if self.region == "us"
            else "DREAMINA_SG_IMAGEX_URL"
        )
        return self.config[key]

    @property
    def imagex_region(self) -> str:
        """The SigV4 region of the site's ImageX."""
        if not self.dreamina:
            return self.config.get("JIMENG_IMAGEX_REGION") or IMAGEX_REGIONS["cn"]
        return IMAGEX_REGIONS["us" if self.region == "us" else "asia"]

    def service_id(self, grant: Mapping[str, Any]) -> str:
        """The ImageX service id of a ``get_upload_token`` answer: ``service_id``
        on the CN site, ``space_name`` on Dreamina, each with its default."""
        if self.dreamina:
            value = grant.get("space_name")
            return str(value) if value else self.config["DREAMINA_SERVICE_ID"]
        value = grant.get("service_id")
        return str(value) if value else CN_SERVICE_ID

    # --- what goes on the wire ---

    def headers(self) -> dict[str, str]:
        c = self.config
        accept = _DREAMINA[self.region]["accept"] if self.dreamina else "zh-CN,zh;q=0.9"
        referer = (
            self.origin + "/"
            if self.dreamina
            else self.origin + "/ai-tool/generate?type=image"
        )
        return {
            "Accept": "application/json, text/plain, */*",
            "Accept-Encoding": "gzip, deflate",  # only what requests decodes
            "Accept-Language": accept,
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Appid": self.app_id,
            "Appvr": self.app_version,
            "Pf": c["JIMENG_PLATFORM_CODE"],
            "App-Sdk-Version": c["JIMENG_APP_SDK_VERSION"],
            "Lan": self.lang,
            "Loc": self.loc,
            "Tdid": "",
            "Origin": self.origin,
            "Referer": referer,
            "Sec-Ch-Ua": c["JIMENG_SEC_CH_UA"],
            "Sec-Ch-Ua-Mobile": "?0",
            "Sec-Ch-Ua-Platform": '"Windows"',
            "Sec-Fetch-Dest": "empty",
            "Sec-Fetch-Mode": "cors",
            # the Dreamina page calls API hosts on other capcut.com names
            "Sec-Fetch-Site": "same-site" if self.dreamina else "same-origin",
            "User-Agent": c["JIMENG_USER_AGENT"],
            "Sign-Ver": c["JIMENG_SIGN_VERSION"],
        }

    def commerce_headers(self) -> dict[str, str]:
        """The headers in which the browser's credit calls differ."""
        if self.dreamina:
            return {"Referer": self.origin + "/"}
        return {"Referer": self.origin + "/ai-tool/image/generate", "Lan": "ZH"}

    def query(self, web_id: str) -> str:
        """Return the query string the browser sends to mweb endpoints."""
        c = self.config
        params = {
            "aid": self.app_id,
            "device_platform": "web",
            "region": self.region_param,
            "webId": web_id,
            "da_version": self._get("JIMENG_DA_VERSION", "DREAMINA_DA_VERSION"),
            "os": c["JIMENG_OS"],
            "web_component_open_flag": "1",
            "web_version": self._get("JIMENG_WEB_VERSION", "DREAMINA_WEB_VERSION"),
            "aigc_features": c["JIMENG_AIGC_FEATURES"],
        }
        if self.dreamina:
            del params["webId"]  # Dreamina's client sends none (§7)
        return "?" + urlencode(params)


class AccountSession(requests.Session):
    """A ``requests.Session`` that knows its account's site, query and proxy."""

    jimeng_query: str = ""
    jimeng_site: Site | None = None
    jimeng_proxy: Proxy | None = None
    jimeng_proxies: dict[str, str] = {}  # noqa: RUF012 (replaced per instance)


class SessionPool:
    """One session per account, least recently used ones dropped.

    A session holds what is particular to an account (site, headers, cookies,
    web ids, proxy); all share one bounded connection pool (one pool manager per
    proxy URL), so neither memory nor sockets grow with the number of accounts.
    """

    def __init__(
        self,
        site: Site | Mapping[str, Site],
        maxsize: int,
        pool_maxsize: int,
        default_proxy: Proxy | None = None,
    ) -> None:
        sites = {site.region: site} if isinstance(site, Site) else dict(site)
        self.sites: dict[str, Site] = sites
        self.site = sites.get(CN) or next(iter(sites.values()))
        self.maxsize = maxsize
        self.default_proxy = default_proxy
        self._sessions: OrderedDict[str, AccountSession] = OrderedDict()
        self._lock = threading.Lock()
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize)
        self._headers = {region: s.headers() for region, s in sites.items()}

    def __len__(self) -> int:
        return len(self._sessions)

    def site_for(self, region: str) -> Site:
        """The site of *region* (built from the configuration on first use)."""
        site = self.sites.get(region)
        if site is None:
            site = self.sites[region] = Site.from_config(self.site.config, region)
            self._headers[region] = site.headers()
        return site

    def get(self, token: str) -> AccountSession:
        """Return the session for *token*, creating it on first use."""
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                session = self._sessions[token] = self._new_session(token)
                while len(self._sessions) > self.maxsize:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(token)
            return session

    def _new_session(self, token: str) -> AccountSession:
        account = split_token(token) or Account(CN, None, token)
        site = self.site_for(account.region)
        session = AccountSession()
        session.mount("http://", self._adapter)
        session.mount("https://", self._adapter)
        session.headers.clear()
        session.trust_env = False  # no proxy or netrc surprises for a secret cookie
        session.headers.update(self._headers[account.region])
        jar = cookie_jar(token, site.config["JIMENG_COOKIES"])
        session.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        session.jimeng_site = site
        # webId == _tea_web_id (§1.7), also when JIMENG_COOKIES leaves it out
        web_id = jar.get("_tea_web_id") or web_identity(jar.get("sessionid", ""))[0]
        session.jimeng_query = site.query(web_id)
        proxy = account.proxy or self.default_proxy
        session.jimeng_proxy = proxy
        session.jimeng_proxies = (
            {"http": proxy.url, "https": proxy.url} if proxy else {}
        )
        return session
