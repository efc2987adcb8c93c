"""How one account's call reaches Jimeng: routed, signed, sent, unwrapped.

Each account's calls go to its site (CN or a Dreamina site, protocol doc §7)
and through its proxy (its own, else ``UPSTREAM_PROXY``); a proxy that cannot
be reached is ``ProxyUnreachableError``: the account's route is broken, not its
session. A call is signed (§1), its mweb/commerce/passport envelope unwrapped
(§2) and a ``ret`` code mapped to our errors (``failures.py``). Only what is
safe to retry is retried: reads always, the generate call only when the request
provably never reached the server. Deciding what to do after an ambiguous
submit is the job flow's business (``jobs.py``): this module only reports it.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .. import metrics
from ..errors import (
    APIError,
    ContentFilteredError,
    InsufficientQuotaError,
    SessionExpiredError,
    UpstreamError,
)
from ..logs import mask, token_id
from .endpoints import ACCOUNT_INFO
from .failures import (
    ERRORS_BY_ENDPOINT,
    ERRORS_BY_RET,
    HINTS,
    AlreadyClaimedError,
    AmbiguousSubmitError,
    TransientError,
)
from .sessions import AccountSession, SessionPool
from .sites import REGIONS, Site
from .tokens import InvalidProxyError, Proxy, account_id, parse_proxy

log = logging.getLogger(__name__)

PROXY_RETRIES = 1  # a dead proxy stays dead: fail over soon


def sign(path: str, device_time: int, pf: str, version: str, affixes: tuple) -> str:
    """Return the ``Sign`` header of §1.6 for *path* at *device_time*."""
    prefix, suffix = affixes
    text = f"{prefix}|{path[-7:]}|{pf}|{version}|{device_time}||{suffix}"
    return hashlib.md5(text.encode()).hexdigest()


def _scrub(text: Any, token: str) -> str:
    """Make upstream text safe to show: no session id, bounded length."""
    return str(text or "").replace(token, mask(token))[:300] if token else ""


def _proxy_failed(exc: requests.RequestException) -> bool:
    """Return whether *exc*, met by a proxied account, means its proxy failed:
    the proxy refused or dropped the connection or the tunnel (HTTP), or the
    SOCKS handshake failed (urllib3 reports that as a new-connection error)."""
    if isinstance(exc, (requests.exceptions.ProxyError, requests.ConnectTimeout)):
        return True
    return _never_sent(exc)


def _never_sent(exc: requests.RequestException) -> bool:
    """Return whether *exc* proves the request never reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
    return isinstance(reason, (NewConnectionError, NameResolutionError))


class Transport:
    """One account's calls: to its site, through its proxy, signed, retried
    when safe, their envelope unwrapped."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.sites = {region: Site.from_config(config, region) for region in REGIONS}
        self.site = self.sites["cn"]
        self.base_url = self.site.base_url
        self.aid = int(config["JIMENG_APP_ID"])
        try:
            default = config.get("UPSTREAM_PROXY") or ""
            self.default_proxy: Proxy | None = parse_proxy(default) if default else None
        except InvalidProxyError as exc:
            raise ValueError(
                f"UPSTREAM_PROXY is not a usable proxy URL: {exc}"
            ) from None
        self.timeout = (
            config["UPSTREAM_CONNECT_TIMEOUT"],
            config["UPSTREAM_READ_TIMEOUT"],
        )
        self.retries = config["UPSTREAM_RETRIES"]
        self.backoff = config["UPSTREAM_RETRY_BACKOFF"]
        self.sign_affixes = (config["JIMENG_SIGN_PREFIX"], config["JIMENG_SIGN_SUFFIX"])
        self.sessions = SessionPool(
            self.sites,
            config["UPSTREAM_MAX_SESSIONS"],
            config["UPSTREAM_POOL_MAXSIZE"],
            default_proxy=self.default_proxy,
        )

    def _url(self, path: str, session: AccountSession) -> str:
        site = session.jimeng_site or self.site
        if path.startswith("/commerce/"):
            return site.commerce_url + path  # the browser sends commerce calls bare
        query = session.jimeng_query
        if path == ACCOUNT_INFO:
            query += "&account_sdk_source=web"
        return site.base_url + path + query

    def site_of(self, token: str) -> Site:
        """The site *token*'s calls go to."""
        return self.sessions.get(token).jimeng_site or self.site

    def proxy_for(self, token: str) -> Proxy | None:
        """The proxy every call of *token*'s account goes through (None: direct);
        CDN downloads of its images should use it too."""
        return self.sessions.get(token).jimeng_proxy

    def proxy_url(self, token: str | None) -> str | None:
        """``proxy_for(token)`` as the URL a fetcher takes (with credentials:
        never log it); without a token, ``UPSTREAM_PROXY``."""
        proxy = self.proxy_for(token) if token else self.default_proxy
        return proxy.url if proxy else None

    # --- transport ---

    def send_signed(
        self,
        path: str,
        session: AccountSession,
        body: bytes | None,
        headers: dict[str, str],
        query: str = "",
    ) -> requests.Response:
        """Sign and send one call (*query*: more of it, ``&k=v``). The request
        is prepared by hand: the session's headers are complete already, so
        requests' per-call merging is skipped."""
        site = session.jimeng_site or self.site
        now = int(time.time())
        c = self.config
        prepared = requests.PreparedRequest()
        prepared.method = "POST"
        prepared.url = self._url(path, session) + query
        prepared.headers = session.headers.copy()
        prepared.headers.update(headers)
        prepared.headers["Device-Time"] = str(now)
        prepared.headers["Sign"] = sign(
            path,
            now,
            c["JIMENG_PLATFORM_CODE"],
            site.app_version,
            self.sign_affixes,
        )
        prepared.headers["Content-Length"] = str(len(body or b""))
        if body is not None:
            prepared.headers["Content-Type"] = "application/json"
        prepared.body = body
        prepared.hooks = {"response": []}
        return session.send(
            prepared,
            timeout=self.timeout,
            allow_redirects=False,
            proxies=session.jimeng_proxies,
        )

    def _call(
        self,
        path: str,
        token: str,
        body: bytes | None = b"{}",
        *,
        safe: bool = True,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """POST to Jimeng and unwrap the envelope, retrying transient failures.

        :param safe: whether repeating the call cannot cost anything. An unsafe
            call is repeated only when it provably never reached the server.
        :param deadline: a ``time.monotonic()`` value after which no retry starts.
        """
        for attempt in range(self.retries + 1):
            try:
                return self._call_once(path, token, body, headers or {})
            except TransientError as exc:
                if not safe and not exc.never_sent:
                    raise AmbiguousSubmitError(
                        exc.message, answered=exc.answered
                    ) from exc
                pause = self.backoff * (2**attempt) * (0.5 + random.random())
                late = deadline is not None and time.monotonic() + pause >= deadline
                gave_up = exc.proxy and attempt >= PROXY_RETRIES
                if attempt == self.retries or late or gave_up:
                    raise exc.final() from exc
            time.sleep(pause)
        raise AssertionError("unreachable")

    def _call_once(
        self, path: str, token: str, body: bytes | None, headers: dict[str, str]
    ) -> Any:
        endpoint = path.rsplit("/", 1)[-1]
        session = self.sessions.get(token)
        proxy = session.jimeng_proxy
        try:
            response = self.send_signed(path, session, body, headers)
        except requests.RequestException as exc:
            if proxy is not None and _proxy_failed(exc):
                metrics.upstream_call(endpoint, "proxy_error")
                raise self._proxy_error(token, proxy, type(exc).__name__) from exc
            metrics.upstream_call(endpoint, "transport_error")
            raise TransientError(
                f"Jimeng could not be reached ({type(exc).__name__}).",
                never_sent=_never_sent(exc),
                timed_out=isinstance(exc, requests.Timeout),
            ) from exc
        if proxy is not None and response.status_code == 407:
            metrics.upstream_call(endpoint, "proxy_error")
            raise self._proxy_error(token, proxy, "HTTP 407")
        return self._unwrap(path, endpoint, token, response)

    def _proxy_error(self, token: str, proxy: Proxy, reason: str) -> TransientError:
        """The account's proxy failed; the log names it masked, the error not
        at all (API callers of a pool need not know the operator's proxies)."""
        account = account_id(token)
        log.warning("proxy %s of account %s failed (%s)", proxy.masked, account, reason)
        return TransientError(
            f"The outbound proxy of account {account} could not be reached "
            f"({reason}); nothing was sent to Jimeng.",
            never_sent=True,
            proxy=True,
        )

    def _unwrap(
        self, path: str, endpoint: str, token: str, response: requests.Response
    ) -> Any:
        status = response.status_code
        if status >= 500 or status == 429:
            metrics.upstream_call(endpoint, f"http_{status}")
            raise TransientError(f"Jimeng answered HTTP {status}.", answered=True)
        try:
            body = response.json()
        except ValueError:
            metrics.upstream_call(endpoint, "not_json")
            raise TransientError(
                f"Jimeng answered HTTP {status} without JSON.", answered=True
            ) from None
        if not isinstance(body, dict):
            metrics.upstream_call(endpoint, "not_json")
            raise TransientError(
                "Jimeng answered with an unexpected body.", answered=True
            )
        if path == ACCOUNT_INFO:
            metrics.upstream_call(endpoint, "ok")
            return body  # passport envelope: no ret (§2.3)
        try:
            ret = int(body.get("ret"))
        except (TypeError, ValueError):
            metrics.upstream_call(endpoint, "bad_envelope")
            raise TransientError(
                "Jimeng answered without a result code.", answered=True
            ) from None
        metrics.upstream_call(endpoint, str(ret))
        if ret == 0:
            return body.get("data")
        raise self._error(ret, body, path, token)

    def _error(self, ret: int, body: dict, path: str, token: str) -> APIError:
        errmsg = _scrub(body.get("errmsg"), token)
        log.info(
            "ret=%s from %s for account %s: %s", ret, path, token_id(token), errmsg
        )
        error_class, code = ERRORS_BY_ENDPOINT.get(
            (path, ret), ERRORS_BY_RET.get(ret, (UpstreamError, None))
        )
        message = f"Jimeng error {ret}: {errmsg or 'no message'}.{HINTS.get(ret, '')}"
        if error_class is InsufficientQuotaError:
            message = f"The Jimeng account has no credits left (ret {ret}: {errmsg})."
        elif error_class is SessionExpiredError:
            message = f"{SessionExpiredError.message} (ret {ret}: {errmsg})"
        elif error_class is AlreadyClaimedError:
            message = "Today's free credits were claimed already (ret 1014)."
        elif error_class is ContentFilteredError:
            message = f"Jimeng's content filter refused the prompt (ret {ret})."
        return error_class(message, code=code)
