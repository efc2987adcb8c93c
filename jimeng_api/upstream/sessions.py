"""Per-account sessions: the headers, cookies, query and proxy one account's
calls carry, one ``requests.Session`` each, on one shared connection pool."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

import requests
from requests.adapters import HTTPAdapter

from .sites import CN, Site
from .tokens import Account, Proxy, cookie_jar, split_token, web_identity


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
