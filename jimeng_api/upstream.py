"""JimengClient: the only module that speaks HTTP to Jimeng.

It signs requests (protocol doc §1), unwraps the mweb/commerce/passport envelopes
(§2), maps ``ret``/``fail_code`` to our errors through one table, and retries only
what is safe to retry: reads always, the generate call only when the request
provably never reached the server.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import requests.adapters
from urllib3.exceptions import NameResolutionError, NewConnectionError

from . import metrics
from .drafts import Draft, generate_body, history_body, submit_lookup_body
from .errors import (
    APIError,
    ContentFilteredError,
    GenerationFailedError,
    InsufficientQuotaError,
    PermissionDeniedError,
    RateLimitError,
    SessionExpiredError,
    UpstreamError,
    UpstreamTimeoutError,
)
from .logs import mask, token_id
from .tokens import SessionPool

log = logging.getLogger(__name__)

GENERATE = "/mweb/v1/aigc_draft/generate"
HISTORY = "/mweb/v1/get_history_by_ids"
USER_CREDIT = "/commerce/v1/benefits/user_credit"
CREDIT_RECEIVE = "/commerce/v1/benefits/credit_receive"
ACCOUNT_INFO = "/passport/account/info/v2"

#: ``ret`` codes that mean something more specific than UpstreamError (§2.5)
ERRORS_BY_RET: dict[int, tuple[type[APIError], str | None]] = {
    1015: (SessionExpiredError, None),
    1006: (InsufficientQuotaError, None),
    5000: (InsufficientQuotaError, None),
    4001: (InsufficientQuotaError, None),
    1010: (RateLimitError, None),
    1018: (PermissionDeniedError, "account_punished"),
    1019: (PermissionDeniedError, None),
    4013: (PermissionDeniedError, None),
    -4: (PermissionDeniedError, None),
    -6: (PermissionDeniedError, None),
    3018: (UpstreamError, "client_outdated"),
    1014: (UpstreamError, "sign_error"),
    1000: (UpstreamError, "upstream_rejected_request"),
    1001: (UpstreamError, "upstream_rejected_request"),
    1002: (UpstreamError, "upstream_rejected_request"),
}
HINTS = {
    3018: " Jimeng refused this client version: update JIMENG_APP_VERSION and "
    "JIMENG_DA_VERSION to the current web client's values.",
    1014: " The request signature or time was refused (check the server clock).",
    1010: " Too many generations are running on this account.",
}
#: history ``fail_code`` values that mean the content filter blocked the prompt
SECURITY_FAIL_CODES = frozenset(
    {"2038", "2039", "2041", "2042", "2043", "2003", "2004", "2005", "2048", "2050"}
    | {"1017", "4013"}
)
DONE = frozenset({50, 10})
FAILED = frozenset({30, 40, 100})


class TransientError(UpstreamError):
    """A transport-level failure that a safe call may retry."""

    def __init__(
        self,
        message: str,
        *,
        never_sent: bool = False,
        timed_out: bool = False,
        answered: bool = False,
    ) -> None:
        super().__init__(message)
        self.never_sent = never_sent  # provably never reached the server
        self.timed_out = timed_out
        self.answered = answered  # the server replied (5xx page, garbage body)

    def final(self) -> UpstreamError:
        """Return the error to report once retrying has given up."""
        error_class = UpstreamTimeoutError if self.timed_out else UpstreamError
        return error_class(self.message)


class AmbiguousSubmitError(UpstreamError):
    """The generate call failed after it may have reached Jimeng."""

    retryable = False  # a client retry could pay for the same images twice

    def __init__(self, cause: TransientError) -> None:
        super().__init__(cause.message)
        self.answered = cause.answered


def sign(path: str, device_time: int, pf: str, version: str, affixes: tuple) -> str:
    """Return the ``Sign`` header of §1.6 for *path* at *device_time*."""
    prefix, suffix = affixes
    text = f"{prefix}|{path[-7:]}|{pf}|{version}|{device_time}||{suffix}"
    return hashlib.md5(text.encode()).hexdigest()


def web_identity(token: str) -> tuple[str, str]:
    """Return a (web_id, user_id) pair derived from *token*: stable per account,
    different across accounts (the original shared one pair per process, Q17)."""
    digest = hashlib.sha256(b"jimeng-api:" + token.encode()).digest()
    web_id = str(7 * 10**18 + int.from_bytes(digest[:8], "big") % 10**18)
    return web_id, digest[8:24].hex()


def _scrub(text: Any, token: str) -> str:
    """Make upstream text safe to show: no session id, bounded length."""
    return str(text or "").replace(token, mask(token))[:300] if token else ""


def _never_sent(exc: requests.RequestException) -> bool:
    """Return whether *exc* proves the request never reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
    return isinstance(reason, (NewConnectionError, NameResolutionError))


@dataclass(frozen=True)
class Record:
    """One history record, reduced to what the generation flow needs."""

    status: int
    fail_code: str
    urls: list[str]
    total: int | None


def parse_record(raw: Mapping[str, Any]) -> Record:
    """Extract status, fail code and image URLs from a history record."""
    try:
        status = int(raw.get("status", 20))
    except (TypeError, ValueError):
        status = 20
    urls = []
    for item in raw.get("item_list") or []:
        image = (item or {}).get("image") or {}
        large = image.get("large_images") or [{}]
        url = (large[0] or {}).get("image_url") or (item.get("common_attr") or {}).get(
            "cover_url"
        )
        if isinstance(url, str) and url:
            urls.append(url)
    total = raw.get("total_image_count")
    return Record(
        status=status,
        fail_code=str(raw.get("fail_code") or ""),
        urls=urls,
        total=total if isinstance(total, int) and total > 0 else None,
    )


class JimengClient:
    """Signed, retrying calls to the Jimeng web endpoints."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.base_url = config["JIMENG_BASE_URL"]
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.base_url))
        self.origin = origin
        self.aid = int(config["JIMENG_APP_ID"])
        self.timeout = (
            config["UPSTREAM_CONNECT_TIMEOUT"],
            config["UPSTREAM_READ_TIMEOUT"],
        )
        self.retries = config["UPSTREAM_RETRIES"]
        self.backoff = config["UPSTREAM_RETRY_BACKOFF"]
        self.sign_affixes = (config["JIMENG_SIGN_PREFIX"], config["JIMENG_SIGN_SUFFIX"])
        self.static_headers = self._static_headers()
        # the browser's commerce calls differ in two headers (protocol doc §1.7)
        self._commerce = {"Referer": origin + "/ai-tool/image/generate", "Lan": "ZH"}
        base_host = (urlsplit(self.base_url).hostname or "").lower()
        self.image_hosts = {
            h.lower().strip(".") for h in config["IMAGE_FETCH_ALLOWED_HOSTS"]
        } | {base_host}
        self.images = requests.Session()  # no cookies: the CDN URLs are signed
        self.images.trust_env = False
        adapter = requests.adapters.HTTPAdapter(
            pool_maxsize=config["UPSTREAM_POOL_MAXSIZE"]
        )
        for scheme in ("http://", "https://"):
            self.images.mount(scheme, adapter)
        self.sessions = SessionPool(
            config["UPSTREAM_MAX_SESSIONS"],
            config["UPSTREAM_POOL_MAXSIZE"],
            self._prepare_session,
        )

    # --- request preparation (once per session id) ---

    def _prepare_session(self, session: requests.Session, token: str) -> None:
        """Set the headers, cookie and query strings a session always sends."""
        web_id, user_id = web_identity(token)
        cookies = (
            ("_tea_web_id", web_id),
            ("is_staff_user", "false"),
            ("uid_tt", user_id),
            ("uid_tt_ss", user_id),
            ("sid_tt", token),
            ("sessionid", token),
            ("sessionid_ss", token),
        )
        session.headers.update(self.static_headers)
        session.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies)
        session.jimeng_query = self._query(web_id)  # type: ignore[attr-defined]

    def _static_headers(self) -> dict[str, str]:
        c = self.config
        return {
            "Accept": "application/json, text/plain, */*",
            "Accept-Encoding": "gzip, deflate",  # only what requests decodes (Q22)
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

    def _query(self, web_id: str) -> str:
        """Return the query string the browser sends to mweb endpoints (§1.7)."""
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

    def _url(self, path: str, session: requests.Session) -> str:
        if path.startswith("/commerce/"):
            return self.base_url + path  # the browser sends commerce calls bare
        query = session.jimeng_query  # type: ignore[attr-defined]
        if path == ACCOUNT_INFO:
            query += "&account_sdk_source=web"
        return self.base_url + path + query

    # --- transport ---

    def _send(
        self, path: str, token: str, body: bytes | None, headers: dict[str, str]
    ) -> requests.Response:
        """Sign and send one call. The request is prepared by hand: the session's
        headers are complete already, so requests' per-call merging is skipped."""
        session = self.sessions.get(token)
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
            c["JIMENG_APP_VERSION"],
            self.sign_affixes,
        )
        prepared.headers["Content-Length"] = str(len(body or b""))
        if body is not None:
            prepared.headers["Content-Type"] = "application/json"
        prepared.body = body
        prepared.hooks = {"response": []}
        return session.send(
            prepared, timeout=self.timeout, allow_redirects=False, proxies={}
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
                    raise AmbiguousSubmitError(exc) from exc
                pause = self.backoff * (2**attempt) * (0.5 + random.random())
                late = deadline is not None and time.monotonic() + pause >= deadline
                if attempt == self.retries or late:
                    raise exc.final() from exc
            time.sleep(pause)
        raise AssertionError("unreachable")

    def _call_once(
        self, path: str, token: str, body: bytes | None, headers: dict[str, str]
    ) -> Any:
        endpoint = path.rsplit("/", 1)[-1]
        try:
            response = self._send(path, token, body, headers)
        except requests.RequestException as exc:
            metrics.upstream_call(endpoint, "transport_error")
            raise TransientError(
                f"Jimeng could not be reached ({type(exc).__name__}).",
                never_sent=_never_sent(exc),
                timed_out=isinstance(exc, requests.Timeout),
            ) from exc
        return self._unwrap(path, endpoint, token, response)

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
            "ret=%s from %s for session %s: %s", ret, path, token_id(token), errmsg
        )
        error_class, code = ERRORS_BY_RET.get(ret, (UpstreamError, None))
        message = f"Jimeng error {ret}: {errmsg or 'no message'}.{HINTS.get(ret, '')}"
        if error_class is InsufficientQuotaError:
            message = f"The Jimeng account has no credits left (ret {ret}: {errmsg})."
        elif error_class is SessionExpiredError:
            message = f"{SessionExpiredError.message} (ret {ret}: {errmsg})"
        return error_class(message, code=code)

    # --- endpoints ---

    def submit(self, token: str, draft: Draft, *, deadline: float | None = None) -> str:
        """Submit a generation once and return its history record id.

        Never repeated blindly. If the call may have reached Jimeng, the record is
        looked up by our ``submit_id``: found, it is adopted; not found after an
        error page, the same submission is sent again; not found after a timeout
        or reset (Jimeng may still be working on it), we give up unpaid-for rather
        than risk paying twice.
        """
        submit_id = str(uuid.uuid1())
        body = generate_body(draft, submit_id, self.aid)
        for attempt in range(1 + self.retries):
            try:
                data = self._call(GENERATE, token, body, safe=False, deadline=deadline)
                return self._history_id(data)
            except AmbiguousSubmitError as exc:
                found = self._look_for(token, submit_id, exc.answered, deadline)
                if found:
                    return found
                if not exc.answered or attempt == self.retries:
                    raise UpstreamTimeoutError(
                        "Jimeng did not confirm the submission and it was not sent "
                        f"again, to avoid paying twice ({exc.message})",
                        retryable=False,
                    ) from exc
                log.info("submit %s was not accepted, sending it again", submit_id)
        raise AssertionError("unreachable")

    def _look_for(
        self, token: str, submit_id: str, answered: bool, deadline: float | None
    ) -> str | None:
        """Find our submission; keep looking a while if Jimeng may still be on it."""
        grace = 0.0 if answered else max(3 * self.timeout[1], 10.0)
        until = time.monotonic() + grace
        if deadline is not None:
            until = min(until, deadline)
        while True:
            try:
                found = self.find_submission(token, submit_id, deadline=deadline)
            except (UpstreamError, RateLimitError):
                found = None
            if found or time.monotonic() >= until:
                return found
            time.sleep(min(1.0, max(until - time.monotonic(), 0.0)))

    @staticmethod
    def _history_id(data: Any) -> str:
        aigc = (data or {}).get("aigc_data") if isinstance(data, dict) else None
        history_id = (aigc or {}).get("history_record_id")
        if not history_id:
            raise UpstreamError(
                "Jimeng accepted the request but returned no record id."
            )
        return str(history_id)

    def find_submission(
        self, token: str, submit_id: str, *, deadline: float | None = None
    ) -> str | None:
        """Return the record id of *submit_id* if Jimeng accepted it, else None."""
        body = submit_lookup_body(submit_id)
        data = self._call(HISTORY, token, body, deadline=deadline)
        record = (data or {}).get(submit_id) if isinstance(data, dict) else None
        if not record:
            return None
        history_id = record.get("history_record_id") or (record.get("task") or {}).get(
            "history_id"
        )
        return str(history_id) if history_id else None

    def history(
        self, token: str, history_id: str, *, deadline: float | None = None
    ) -> Record | None:
        """Poll one record; None while Jimeng does not know it yet."""
        data = self._call(
            HISTORY,
            token,
            history_body(history_id, self.aid),
            headers={"X-Platform": "pc"},
            deadline=deadline,
        )
        raw = data.get(history_id) if isinstance(data, dict) else None
        return parse_record(raw) if isinstance(raw, dict) else None

    def credits(self, token: str) -> dict[str, int]:
        """Return the account's credit balance (§3.1)."""
        data = self._call(USER_CREDIT, token, b"{}", headers=self._commerce)
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
        data = self._call(CREDIT_RECEIVE, token, body, headers=self._commerce)
        return data if isinstance(data, dict) else {}

    def is_live(self, token: str) -> bool:
        """Return whether the session is logged in (passport, §3.5)."""
        body = self._call(ACCOUNT_INFO, token, None)
        data = body.get("data")
        return isinstance(data, dict) and bool(data.get("user_id"))

    def fetch_image(self, url: str) -> bytes:
        """Download one image Jimeng returned: allowed hosts only, capped, timed."""
        self._check_image_url(url)
        c = self.config
        timeout = (c["UPSTREAM_CONNECT_TIMEOUT"], c["IMAGE_FETCH_TIMEOUT"])
        try:
            with self.images.get(
                url, stream=True, timeout=timeout, allow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise UpstreamError(
                        f"Fetching an image failed with HTTP {response.status_code} "
                        "(the signed image URLs expire)."
                    )
                return self._read_capped(response)
        except requests.RequestException as exc:
            raise UpstreamError(
                f"Fetching an image failed ({type(exc).__name__})."
            ) from exc

    def _read_capped(self, response: requests.Response) -> bytes:
        """Read the body within IMAGE_FETCH_MAX_BYTES and IMAGE_FETCH_TIMEOUT."""
        limit = self.config["IMAGE_FETCH_MAX_BYTES"]
        deadline = time.monotonic() + self.config["IMAGE_FETCH_TIMEOUT"]
        chunks, size = [], 0
        for chunk in response.iter_content(65536):
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"An image is larger than {limit} bytes.")
            if time.monotonic() > deadline:
                raise UpstreamTimeoutError("Fetching an image took too long.")
            chunks.append(chunk)
        return b"".join(chunks)

    def _check_image_url(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        allowed = any(
            host == entry or host.endswith("." + entry) for entry in self.image_hosts
        )
        if parts.scheme not in ("http", "https") or not allowed:
            raise UpstreamError(
                f"Refusing to fetch an image from '{host or url[:60]}': the host is "
                "not in IMAGE_FETCH_ALLOWED_HOSTS.",
                code="image_host_not_allowed",
            )

    def fail_error(self, record: Record, history_id: str) -> APIError:
        """Return the error for a failed record (status 30/40/100)."""
        if record.fail_code in SECURITY_FAIL_CODES:
            return ContentFilteredError(
                f"The prompt was blocked by Jimeng's content filter "
                f"(fail_code {record.fail_code}, record {history_id})."
            )
        detail = f"fail_code {record.fail_code}" if record.fail_code else "no fail code"
        return GenerationFailedError(
            f"Jimeng could not generate the image (status {record.status}, "
            f"{detail}, record {history_id})."
        )
