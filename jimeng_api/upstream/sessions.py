"""Per-account identity: which cookies, headers and query an account sends.

A token is what the caller pastes: a bare ``sessionid`` value or a whole cookie
string from the browser (``sessionid=…; ttwid=…; odin_tt=…``). The session id is
the account's identity; a pasted cookie jar is sent as it is, completed with
what the site always needs. ``webId`` in the query and the ``_tea_web_id``
cookie come from one value (a mismatch is a risk-control trigger,
protocol-2026-12 §2). ``Origin``/``Referer`` are the site's whatever host the
calls go to (an operator may point the base URL at a relay).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter

# A bare session id is a short ASCII word; anything else (';', '=', spaces,
# newlines) could inject cookies or headers, so it is refused. ``fullmatch``: a
# trailing newline does not pass (``$`` would let it).
SESSION_ID = re.compile(r"[A-Za-z0-9._:+/-]{1,256}")
_COOKIE_NAME = re.compile(r"[A-Za-z0-9_.!#$%&'*+^`|~-]{1,128}")
_COOKIE_VALUE = re.compile(r"[\x21-\x2b\x2d-\x3a\x3c-\x7e]{0,4096}")  # no , ; space
MAX_COOKIE_STRING = 8192
SESSION_COOKIES = ("sessionid", "sessionid_ss", "sid_tt")


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


def session_id(token: str) -> str | None:
    """Return the session id a token stands for, or None if it is malformed."""
    if SESSION_ID.fullmatch(token):
        return token
    cookies = parse_cookie_string(token)
    if not cookies:
        return None
    for name in SESSION_COOKIES:
        value = cookies.get(name, "")
        if SESSION_ID.fullmatch(value):
            return value
    return None


def account_id(token: str) -> str:
    """Return the short, irreversible name of the account behind *token*: the
    same for a bare session id and for a cookie string that carries it."""
    identity = session_id(token) or token
    return hashlib.sha256(identity.encode("utf-8", "replace")).hexdigest()[:8]


def web_identity(session: str) -> tuple[str, str]:
    """Return a (web_id, user_id) pair derived from the session id: stable per
    account, different across accounts."""
    digest = hashlib.sha256(b"jimeng-api:" + session.encode()).digest()
    web_id = str(7 * 10**18 + int.from_bytes(digest[:8], "big") % 10**18)
    return web_id, digest[8:24].hex()


def cookie_jar(token: str) -> dict[str, str]:
    """Return the cookies to send for *token*, in a stable order."""
    session = session_id(token) or ""
    pasted = parse_cookie_string(token) if token != session else None
    web_id, user_id = web_identity(session)
    jar = {
        "_tea_web_id": web_id,
        "is_staff_user": "false",
        "uid_tt": user_id,
        "uid_tt_ss": user_id,
        "sid_tt": session,
        "sessionid": session,
        "sessionid_ss": session,
    }
    if pasted:
        jar.update(pasted)  # the browser's own values win
        jar["sessionid"] = session
    return jar


@dataclass(frozen=True)
class Site:
    """The constants one site's browser client sends (protocol doc §1.7)."""

    base_url: str
    origin: str
    config: Mapping[str, Any]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Site:
        return cls(config["JIMENG_BASE_URL"], config["JIMENG_SITE_ORIGIN"], config)

    def headers(self) -> dict[str, str]:
        c = self.config
        return {
            "Accept": "application/json, text/plain, */*",
            "Accept-Encoding": "gzip, deflate",  # only what requests decodes
            "Accept-Language": "zh-CN,zh;q=0.9",
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Appid": c["JIMENG_APP_ID"],
            "Appvr": c["JIMENG_APP_VERSION"],
            "Pf": c["JIMENG_PLATFORM_CODE"],
            "App-Sdk-Version": c["JIMENG_APP_SDK_VERSION"],
            "Lan": c["JIMENG_LANG"],
            "Loc": c["JIMENG_LOC"],
            "Tdid": "",
            "Origin": self.origin,
            "Referer": self.origin + "/ai-tool/generate?type=image",
            "Sec-Ch-Ua": c["JIMENG_SEC_CH_UA"],
            "Sec-Ch-Ua-Mobile": "?0",
            "Sec-Ch-Ua-Platform": '"Windows"',
            "Sec-Fetch-Dest": "empty",
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Site": "same-origin",
            "User-Agent": c["JIMENG_USER_AGENT"],
            "Sign-Ver": c["JIMENG_SIGN_VERSION"],
        }

    def commerce_headers(self) -> dict[str, str]:
        """The two headers in which the browser's credit calls differ."""
        return {"Referer": self.origin + "/ai-tool/image/generate", "Lan": "ZH"}

    def query(self, web_id: str) -> str:
        """Return the query string the browser sends to mweb endpoints."""
        c = self.config
        params = {
            "aid": c["JIMENG_APP_ID"],
            "device_platform": "web",
            "region": c["JIMENG_REGION"],
            "webId": web_id,
            "da_version": c["JIMENG_DA_VERSION"],
            "os": c["JIMENG_OS"],
            "web_component_open_flag": "1",
            "web_version": c["JIMENG_WEB_VERSION"],
            "aigc_features": c["JIMENG_AIGC_FEATURES"],
        }
        return "?" + urlencode(params)


class AccountSession(requests.Session):
    """A ``requests.Session`` that knows its account's query string."""

    jimeng_query: str = ""


class SessionPool:
    """One session per account, least recently used ones dropped.

    A session holds what is particular to an account (headers, cookies, web
    ids); all share one bounded connection pool, so neither memory nor sockets
    grow with the number of accounts.
    """

    def __init__(self, site: Site, maxsize: int, pool_maxsize: int) -> None:
        self.site = site
        self.maxsize = maxsize
        self._sessions: OrderedDict[str, AccountSession] = OrderedDict()
        self._lock = threading.Lock()
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize)
        self._headers = site.headers()

    def __len__(self) -> int:
        return len(self._sessions)

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
        session = AccountSession()
        session.mount("http://", self._adapter)
        session.mount("https://", self._adapter)
        session.headers.clear()
        session.trust_env = False  # no proxy or netrc surprises for a secret cookie
        session.headers.update(self._headers)
        jar = cookie_jar(token)
        session.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        session.jimeng_query = self.site.query(jar["_tea_web_id"])
        return session
