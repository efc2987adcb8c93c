"""JimengClient: the only module that speaks HTTP to Jimeng.

It signs requests (protocol doc §1), unwraps the mweb/commerce/passport envelopes
(§2), maps ``ret`` codes to our errors through one table (with per-endpoint
overrides), and retries only what is safe to retry: reads always, the generate
call only when the request provably never reached the server. Deciding what to
do after an ambiguous submit is the job flow's business (``jobs.py``): this
module only reports it.

Each account's calls go to its site (CN or a Dreamina site, protocol doc §7)
and through its proxy (its own, else ``UPSTREAM_PROXY``); a proxy that cannot
be reached is ``ProxyUnreachableError``: the account's route is broken, not its
session.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .. import metrics
from ..catalog import require_key_on_site
from ..errors import (
    APIError,
    ContentFilteredError,
    InsufficientQuotaError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SessionExpiredError,
    UpstreamError,
    UpstreamTimeoutError,
)
from ..logs import mask, token_id
from .drafts import Draft, generate_body, history_body, submit_lookup_body
from .records import Record, history_id_of, parse_record
from .sessions import (
    REGIONS,
    AccountSession,
    InvalidProxyError,
    Proxy,
    SessionPool,
    Site,
    account_id,
    parse_proxy,
)
from .video import (
    LOCAL_ITEMS,
    VIDEO_REFERER_PATH,
    VideoDraft,
    hq_urls,
    local_items_body,
    video_body,
    video_submit_error,
)

log = logging.getLogger(__name__)

GENERATE = "/mweb/v1/aigc_draft/generate"
COMMON_CONFIG = "/mweb/v1/get_common_config"
HISTORY = "/mweb/v1/get_history_by_ids"
USER_CREDIT = "/commerce/v1/benefits/user_credit"
CREDIT_RECEIVE = "/commerce/v1/benefits/credit_receive"
ACCOUNT_INFO = "/passport/account/info/v2"
PROXY_RETRIES = 1  # a dead proxy stays dead: fail over soon


class ParallelLimitError(RateLimitError):
    """ret 1310: the account runs as many tasks as it may; not accepted, not
    charged. The job waits for one of the account's tasks to end."""

    code = "exceed_model_parallel_max"
    retryable = True


class AlreadyClaimedError(RateLimitError):
    """ret 1014 on credit_receive: today's credits were claimed already."""

    code = "already_claimed"
    retryable = False


#: ``ret`` codes that mean something more specific than UpstreamError
ERRORS_BY_RET: dict[int, tuple[type[APIError], str | None]] = {
    1015: (SessionExpiredError, None),
    1006: (InsufficientQuotaError, None),
    5000: (InsufficientQuotaError, None),
    4001: (ContentFilteredError, None),  # content, never a reason to claim credits
    2038: (ContentFilteredError, None),
    1310: (ParallelLimitError, None),
    2061: (NotFoundError, "model_retired"),
    1010: (RateLimitError, None),
    1018: (PermissionDeniedError, "account_punished"),
    1019: (PermissionDeniedError, None),
    4013: (PermissionDeniedError, None),
    -4: (PermissionDeniedError, None),
    -6: (PermissionDeniedError, None),
    3018: (UpstreamError, "client_outdated"),
    1014: (UpstreamError, "system_busy"),
    1000: (UpstreamError, "upstream_rejected_request"),
    1001: (UpstreamError, "upstream_rejected_request"),
    1002: (UpstreamError, "upstream_rejected_request"),
}
#: per-endpoint meanings that differ from the table above
ERRORS_BY_ENDPOINT: dict[tuple[str, int], tuple[type[APIError], str | None]] = {
    (CREDIT_RECEIVE, 1014): (AlreadyClaimedError, None),
}
HINTS = {
    3018: " Jimeng refused this client version: update JIMENG_APP_VERSION and "
    "JIMENG_DA_VERSION to the current web client's values.",
    1014: " Jimeng said 'system busy' (or refused the signature); not retried.",
    1010: " Too many generations are running on this account.",
    1310: " The account runs as many tasks as Jimeng allows at once.",
    2061: " The model is retired on Jimeng.",
    4013: " Jimeng's risk control refused the request.",
}


class ProxyUnreachableError(UpstreamError):
    """The account's proxy could not be reached, refused the tunnel or asked
    for credentials it did not get: nothing reached Jimeng. The account is
    unreachable (cool it down, use another), not expired."""

    code = "proxy_unreachable"


class TransientError(UpstreamError):
    """A transport-level failure that a safe call may retry."""

    def __init__(
        self,
        message: str,
        *,
        never_sent: bool = False,
        timed_out: bool = False,
        answered: bool = False,
        proxy: bool = False,
    ) -> None:
        super().__init__(message)
        self.never_sent = never_sent  # provably never reached the server
        self.timed_out = timed_out
        self.answered = answered  # the server replied (5xx page, garbage body)
        self.proxy = proxy  # the account's proxy failed (never sent, too)

    def final(self) -> UpstreamError:
        """Return the error to report once retrying has given up."""
        if self.proxy:
            return ProxyUnreachableError(self.message)
        error_class = UpstreamTimeoutError if self.timed_out else UpstreamError
        return error_class(self.message)


class AmbiguousSubmitError(UpstreamError):
    """The generate call failed after it may have reached Jimeng: the caller
    must look the submission up by its ``submit_id`` before deciding anything."""

    retryable = False  # a client retry could pay for the same images twice

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


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


class JimengClient:
    """Signed, retrying calls to the Jimeng web endpoints."""

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
        self._commerce = {r: s.commerce_headers() for r, s in self.sites.items()}
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

    def check_model(self, token: str, model_key: str) -> None:
        """Refuse (400 ``model_not_available``, naming the models the account's
        site has) a model the site of *token* does not offer (§7)."""
        require_key_on_site(model_key, self.site_of(token).region)

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

    def _send(
        self,
        path: str,
        session: AccountSession,
        body: bytes | None,
        headers: dict[str, str],
    ) -> requests.Response:
        """Sign and send one call. The request is prepared by hand: the session's
        headers are complete already, so requests' per-call merging is skipped."""
        site = session.jimeng_site or self.site
        now = int(time.time())
        c = self.config
        prepared = requests.PreparedRequest()
        prepared.method = "POST"
        prepared.url = self._url(path, session)
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
            response = self._send(path, session, body, headers)
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

    # --- endpoints ---

    def submit(
        self,
        token: str,
        draft: Draft | VideoDraft,
        submit_id: str,
        *,
        deadline: float | None = None,
    ) -> str:
        """Send a generation once and return its history record id.

        Raises ``AmbiguousSubmitError`` when the call may have reached Jimeng
        (a timeout, a reset, an error page, or an answer without a record id):
        the caller then looks the submission up by *submit_id*.
        """
        site = self.site_of(token)
        self.check_model(token, draft.model_key)
        headers = None
        if isinstance(draft, VideoDraft):
            body = video_body(draft, submit_id, int(site.app_id))
            headers = {"Referer": site.origin + VIDEO_REFERER_PATH}
        else:
            body = generate_body(draft, submit_id, int(site.app_id))
        try:
            data = self._call(
                GENERATE, token, body, safe=False, deadline=deadline, headers=headers
            )
        except TransientError as exc:  # retries gave up on a never-sent call
            raise exc.final() from exc
        except APIError as exc:  # a video's refusals say what they mean for video
            if isinstance(draft, VideoDraft):
                raise video_submit_error(exc, draft) from exc
            raise
        aigc = (data or {}).get("aigc_data") if isinstance(data, dict) else None
        history_id = (aigc or {}).get("history_record_id")
        if not history_id:
            raise AmbiguousSubmitError(
                "Jimeng accepted the request but returned no record id.",
                answered=True,
            )
        return str(history_id)

    def find_submissions(
        self, token: str, submit_ids: list[str], *, deadline: float | None = None
    ) -> dict[str, str]:
        """Return ``{submit_id: history_id}`` for those Jimeng accepted."""
        body = submit_lookup_body(submit_ids)
        data = self._call(HISTORY, token, body, deadline=deadline)
        found = {}
        for submit_id in submit_ids:
            raw = data.get(submit_id) if isinstance(data, dict) else None
            history_id = history_id_of(raw) if isinstance(raw, dict) else None
            if history_id:
                found[submit_id] = history_id
        return found

    def history(
        self, token: str, history_ids: list[str], *, deadline: float | None = None
    ) -> dict[str, Record]:
        """Poll several records of one account in one call; a record Jimeng does
        not know (yet) is missing from the answer."""
        data = self._call(
            HISTORY,
            token,
            history_body(history_ids, int(self.site_of(token).app_id)),
            headers={"X-Platform": "pc"},
            deadline=deadline,
        )
        records = {}
        for history_id in history_ids:
            raw = data.get(history_id) if isinstance(data, dict) else None
            if isinstance(raw, dict):
                records[history_id] = parse_record(raw)
        if self.config.get("VIDEO_HQ", True):
            records = self._with_hq_videos(token, records)
        return records

    def _with_hq_videos(
        self, token: str, records: dict[str, Record]
    ) -> dict[str, Record]:
        """Finished videos with their download file (``get_local_item_list``,
        §6.3) where the account is entitled to it; the record's URL otherwise."""
        done = {h: r for h, r in records.items() if r.done and r.video and r.urls}
        ids = [i for r in done.values() for i in r.item_ids if i]
        if not ids:
            return records
        try:
            found = hq_urls(self._call(LOCAL_ITEMS, token, local_items_body(ids)))
        except APIError as exc:
            log.info("no HQ video for account %s: %s", token_id(token), exc.message)
            return records
        for history_id, record in done.items():
            pairs = zip(record.item_ids, record.urls, strict=True)
            urls = [found.get(i) or u for i, u in pairs]
            records[history_id] = replace(record, urls=urls)
        return records

    def common_config(self, token: str) -> Any:
        """The site's model capability table, as the web client reads it."""
        body = b'{"is_client_filter":false,"need_beta_model":true}'
        return self._call(COMMON_CONFIG, token, body)

    def credits(self, token: str) -> dict[str, int]:
        """Return the account's credit balance (§3.1)."""
        commerce = self._commerce[self.site_of(token).region]
        data = self._call(USER_CREDIT, token, b"{}", headers=commerce)
        credit = (data or {}).get("credit") if isinstance(data, dict) else None
        if not isinstance(credit, dict):
            raise UpstreamError("Jimeng returned no credit information.")
        points = {
            "giftCredit": int(credit.get("gift_credit") or 0),
            "purchaseCredit": int(credit.get("purchase_credit") or 0),
            "vipCredit": int(credit.get("vip_credit") or 0),
        }
        points["totalCredit"] = sum(points.values())
        return points

    def receive_credits(self, token: str) -> dict[str, Any]:
        """Claim the daily credit grant (§3.2); raises if Jimeng refuses."""
        body = b'{"time_zone":"Asia/Shanghai"}'
        commerce = self._commerce[self.site_of(token).region]
        data = self._call(CREDIT_RECEIVE, token, body, headers=commerce)
        return data if isinstance(data, dict) else {}

    def is_live(self, token: str) -> bool:
        """Return whether the session is logged in (passport, §3.5)."""
        body = self._call(ACCOUNT_INFO, token, None)
        data = body.get("data")
        return isinstance(data, dict) and bool(data.get("user_id"))
