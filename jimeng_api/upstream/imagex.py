"""Reference images upstream: the ImageX upload and the safety pre-check.

Protocol doc §5.5 (four calls) and §5.6:

1. ``POST /mweb/v1/get_upload_token`` (Jimeng, signed like every mweb call) →
   temporary ImageX keys (``AKTP…``/``STS2…``) and the ``service_id``;
2. ``GET <imagex>/?Action=ApplyImageUpload&…`` (AWS SigV4, service ``imagex``) →
   a ``StoreUri``, its upload ``Auth``, an upload host and a ``SessionKey``;
3. ``POST <upload host>/upload/v1/<StoreUri>``: the raw bytes, ``Content-CRC32``
   (zlib CRC-32, lower-case hex, 8 digits) and the ``Auth`` verbatim;
4. ``POST <imagex>/?Action=CommitImageUpload&…`` (SigV4 over the JSON body, with
   ``x-amz-content-sha256``) → the ``image_uri`` the blend draft names.

Then, on the CN site, the uploaded image's safety pre-check (``algo_proxy``): a
refusal there (ret 2003, "risk not pass") is a content error; anything else it
says is ignored, as the web client does.

The ImageX calls carry no Jimeng cookie: only the temporary keys. The upload
host comes from Jimeng's own answer and is reached with the scheme of the
ImageX base URL (the simulator serves both on one plain-HTTP host).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import re
import string
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import gevent.pool
import requests
from requests.adapters import HTTPAdapter

from ..errors import ContentFilteredError, UpstreamError, UpstreamTimeoutError
from .client import JimengClient, sign

log = logging.getLogger(__name__)

UPLOAD_TOKEN = "/mweb/v1/get_upload_token"
ALGO_PROXY = "/mweb/v1/algo_proxy"
ALGORITHM = "AWS4-HMAC-SHA256"
IMAGEX_VERSION = "2018-08-01"
SERVICE = "imagex"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DEFAULT_SERVICE_ID = "tb4s082cfz"  # CN (§5.5, call 1)
UPLOAD_CONCURRENCY = 4
#: SigV4 query values are not re-encoded (§5.5): only these characters are safe
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._-]*")
_BASE36 = string.digits + string.ascii_lowercase
#: the §5.6 pre-check: which answers mean "this image is refused"
RISK_RET = "2003"
RISK_MESSAGES = ("risk not pass", "detected risk")
BABI_PARAM = json.dumps(
    {
        "scenario": "image_video_generation",
        "feature_key": "aigc_to_image",
        "feature_entrance": "to-generate",
        "feature_entrance_detail": "to-generate-algo_proxy",
    },
    separators=(",", ":"),
)


# --- signing (pure functions; the doc's test vectors check them) ---------------


def crc32_hex(data: bytes) -> str:
    """The ``Content-CRC32`` value: zlib CRC-32, lower-case hex, zero-padded."""
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


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


# --- the upload --------------------------------------------------------------------


@dataclass(frozen=True)
class UploadToken:
    """The temporary ImageX keys of one account (call 1), and where and how its
    uploads go: the site's ImageX and SigV4 region, the account's proxy."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    service_id: str
    imagex_url: str = ""
    region: str = "cn-north-1"
    dreamina: bool = False
    proxies: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""


@dataclass(frozen=True)
class Uploaded:
    """A committed image: its ``image_uri`` and what ImageX measured."""

    uri: str
    width: int
    height: int
    format: str


class ImageUploader:
    """Uploads reference images for one account and checks them (§5.5, §5.6)."""

    def __init__(
        self,
        client: JimengClient,
        *,
        imagex_url: str,
        region: str,
        safety_check: bool,
    ) -> None:
        config = client.config
        self.client = client
        self.imagex_url = imagex_url.rstrip("/")
        self.scheme = urlsplit(self.imagex_url).scheme or "https"
        self.region = region
        self.safety_check = safety_check
        self.timeout = client.timeout
        self.retries = int(config["UPSTREAM_RETRIES"])
        self.backoff = float(config["UPSTREAM_RETRY_BACKOFF"])
        self.origin = config["JIMENG_SITE_ORIGIN"]
        self.browser_headers = {
            "Sec-Fetch-Site": "cross-site",
            "User-Agent": config["JIMENG_USER_AGENT"],
            "Accept": "*/*",
        }
        self.http = requests.Session()
        self.http.trust_env = False  # no proxy or netrc surprises
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    # --- call 1 ---

    def upload_token(self, token: str) -> UploadToken:
        """Ask Jimeng for the account's ImageX keys (scene 2: images)."""
        data = self.client._call(UPLOAD_TOKEN, token, b'{"scene":2}')
        data = data if isinstance(data, dict) else {}
        fields = ("access_key_id", "secret_access_key", "session_token")
        if not all(isinstance(data.get(f), str) and data.get(f) for f in fields):
            raise UpstreamError(
                "Jimeng returned no upload token for the reference images.",
                code="upload_failed",
            )
        site = self._site(token)
        dreamina = bool(getattr(site, "dreamina", False))
        if dreamina:  # the Dreamina sites have their own ImageX (§7)
            imagex_url, region = site.imagex_url.rstrip("/"), site.imagex_region
        else:
            imagex_url, region = self.imagex_url, self.region
        service_of = getattr(site, "service_id", None)
        service_id = (
            service_of(data)
            if callable(service_of)
            else str(data.get("service_id") or DEFAULT_SERVICE_ID)
        )
        session = self.client.sessions.get(token)
        return UploadToken(
            data["access_key_id"],
            data["secret_access_key"],
            data["session_token"],
            service_id,
            imagex_url=imagex_url,
            region=region,
            dreamina=dreamina,
            proxies=dict(getattr(session, "jimeng_proxies", None) or {}),
            origin=getattr(site, "origin", "") or self.origin,
        )

    def _site(self, token: str) -> Any:
        site_of = getattr(self.client, "site_of", None)
        return site_of(token) if callable(site_of) else self.client.site

    # --- calls 2-4 ---

    def upload_all(self, token: str, images: Sequence[bytes]) -> list[Uploaded]:
        """Upload *images* in order with one upload token; a few at a time."""
        keys = self.upload_token(token)
        if len(images) == 1:
            return [self.upload(keys, images[0])]
        pool = gevent.pool.Pool(min(UPLOAD_CONCURRENCY, len(images)))
        jobs = [pool.spawn(self.upload, keys, data) for data in images]
        try:
            for job in jobs:
                job.join()
                if not job.successful():
                    raise job.exception
            return [job.value for job in jobs]
        finally:
            pool.kill(block=False)

    def upload(self, keys: UploadToken, data: bytes) -> Uploaded:
        """Apply, upload and commit one image; return its ``image_uri``."""
        store_uri, auth, host, session_key = self._apply(keys, len(data))
        self._put(keys, host, store_uri, auth, data)
        return self._commit(keys, session_key)

    def _apply(self, keys: UploadToken, size: int) -> tuple[str, str, str, str]:
        params = {
            "Action": "ApplyImageUpload",
            "Version": IMAGEX_VERSION,
            "ServiceId": keys.service_id,
            "FileSize": str(size),
            "s": "".join(random.choices(_BASE36, k=10)),
        }
        if keys.dreamina:
            params["device_platform"] = "web"
        answer = self._imagex("GET", params, keys, None)
        address = (answer.get("Result") or {}).get("UploadAddress") or {}
        stores = address.get("StoreInfos") or []
        hosts = address.get("UploadHosts") or []
        first = stores[0] if stores and isinstance(stores[0], dict) else {}
        store_uri, auth = first.get("StoreUri"), first.get("Auth")
        session_key = address.get("SessionKey")
        values = (store_uri, auth, hosts[0] if hosts else None, session_key)
        if not all(isinstance(v, str) and v for v in values):
            raise UpstreamError(
                "ImageX gave no upload address for a reference image.",
                code="upload_failed",
            )
        return values  # type: ignore[return-value]

    def _put(
        self, keys: UploadToken, host: str, store_uri: str, auth: str, data: bytes
    ) -> None:
        if "/" in host or "@" in host or not host.strip():
            raise UpstreamError(
                "ImageX gave an invalid upload host.", code="upload_failed"
            )
        scheme = urlsplit(keys.imagex_url).scheme or self.scheme
        url = f"{scheme}://{host}/upload/v1/{quote(store_uri, safe='/-_.')}"
        headers = {
            **self._browser(keys),
            "Authorization": auth,
            "Content-CRC32": crc32_hex(data),
            "Content-Type": "application/octet-stream",
            "Content-Disposition": 'attachment; filename="undefined"',
        }
        response = self._request("POST", url, headers, data, keys.proxies)
        body = _json(response)
        code = body.get("code") if isinstance(body, dict) else None
        if response.status_code >= 300 or (code is not None and code != 2000):
            message = body.get("message") if isinstance(body, dict) else None
            raise UpstreamError(
                f"The reference image upload failed (HTTP {response.status_code}"
                f"{': ' + str(message)[:120] if message else ''}).",
                code="upload_failed",
            )

    def _commit(self, keys: UploadToken, session_key: str) -> Uploaded:
        params = {
            "Action": "CommitImageUpload",
            "Version": IMAGEX_VERSION,
            "ServiceId": keys.service_id,
        }
        body = json.dumps({"SessionKey": session_key}, separators=(",", ":")).encode()
        answer = self._imagex("POST", params, keys, body)
        result = answer.get("Result") or {}
        results = result.get("Results") or []
        first = results[0] if results and isinstance(results[0], dict) else {}
        if first.get("UriStatus") != 2000 or not isinstance(first.get("Uri"), str):
            raise UpstreamError(
                "ImageX did not commit a reference image "
                f"(UriStatus {first.get('UriStatus')}).",
                code="upload_failed",
            )
        plugins = result.get("PluginResult") or []
        plugin = plugins[0] if plugins and isinstance(plugins[0], dict) else {}
        return Uploaded(
            uri=first["Uri"],
            width=_int(plugin.get("ImageWidth")),
            height=_int(plugin.get("ImageHeight")),
            format=str(plugin.get("ImageFormat") or ""),
        )

    def _imagex(
        self,
        method: str,
        params: dict[str, str],
        keys: UploadToken,
        body: bytes | None,
    ) -> dict[str, Any]:
        """One signed ImageX call; its ``ResponseMetadata.Error`` becomes an
        error even when the HTTP status is 200."""
        action = params["Action"]
        headers = sigv4_headers(
            method,
            params,
            access_key=keys.access_key_id,
            secret_key=keys.secret_access_key,
            session_token=keys.session_token,
            region=keys.region,
            date=amz_date(),
            body=body,
        )
        headers.update(self._browser(keys))
        if body is not None:
            headers["Content-Type"] = "application/json"
        query = "&".join(f"{k}={v}" for k, v in params.items())
        base = keys.imagex_url or self.imagex_url
        response = self._request(
            method, f"{base}/?{query}", headers, body, keys.proxies
        )
        answer = _json(response)
        if not isinstance(answer, dict):
            raise UpstreamError(
                f"ImageX answered {action} with HTTP {response.status_code} "
                "and no JSON.",
                code="upload_failed",
            )
        error = (answer.get("ResponseMetadata") or {}).get("Error")
        if error or response.status_code >= 300:
            error = error if isinstance(error, dict) else {}
            raise UpstreamError(
                f"ImageX refused {action} (HTTP {response.status_code}, "
                f"{str(error.get('Code') or 'no code')[:60]}: "
                f"{str(error.get('Message') or '')[:120]}).",
                code="upload_failed",
            )
        return answer

    def _browser(self, keys: UploadToken) -> dict[str, str]:
        """origin/referer as the site's page sends them (§5.5, §7)."""
        origin = keys.origin or self.origin
        referer = origin + ("/" if keys.dreamina else "/ai-tool/generate")
        return {**self.browser_headers, "Origin": origin, "Referer": referer}

    def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send, retrying transport errors and 5xx (every step is repeatable:
        nothing is charged before the generate call)."""
        for attempt in range(self.retries + 1):
            try:
                response = self.http.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    proxies=dict(proxies or {}),
                )
            except requests.RequestException as exc:
                if attempt == self.retries:
                    error_class = (
                        UpstreamTimeoutError
                        if isinstance(exc, requests.Timeout)
                        else UpstreamError
                    )
                    raise error_class(
                        f"ImageX could not be reached ({type(exc).__name__}).",
                        code="upload_failed",
                    ) from exc
            else:
                if response.status_code < 500 or attempt == self.retries:
                    return response
            time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    # --- §5.6 ---

    def check(self, token: str, uris: Sequence[str]) -> int | None:
        """Run the site's safety pre-check on each uploaded image; return the
        index of the first one it refuses (None: all passed or unknown)."""
        if not self.safety_check or getattr(self._site(token), "dreamina", False):
            return None  # the CN site's check only
        for index, uri in enumerate(uris):
            if self._refused(token, uri):
                return index
        return None

    def _refused(self, token: str, uri: str) -> bool:
        body = json.dumps(
            {
                "scene": "image_face_ip",
                "options": {"ip_check": True},
                "req_key": "benchmark_test_user_upload_image_input",
                "file_list": [{"file_uri": uri}],
                "req_params": {},
            },
            separators=(",", ":"),
        ).encode()
        try:
            response = self._algo_proxy(token, body)
        except requests.RequestException as exc:
            log.info("image safety check not reached (%s); ignored", type(exc).__name__)
            return False
        answer = _json(response)
        if not isinstance(answer, dict):
            return False
        ret = str(answer.get("ret"))
        message = str(answer.get("errmsg") or "").lower()
        if ret == RISK_RET or any(m in message for m in RISK_MESSAGES):
            return True
        if ret != "0":
            log.info("image safety check answered ret %s; ignored", ret[:20])
        return False

    def _algo_proxy(self, token: str, body: bytes) -> requests.Response:
        """The pre-check call: an mweb call (signed, the account's cookie) with
        the extra ``babi_param`` query the web client sends."""
        client = self.client
        session = client.sessions.get(token)
        site = getattr(session, "jimeng_site", None) or client.site
        now = int(time.time())
        c = client.config
        prepared = requests.PreparedRequest()
        prepared.method = "POST"
        prepared.url = (
            client._url(ALGO_PROXY, session) + "&babi_param=" + quote(BABI_PARAM)
        )
        prepared.headers = session.headers.copy()
        prepared.headers["Device-Time"] = str(now)
        prepared.headers["Sign"] = sign(
            ALGO_PROXY,
            now,
            c["JIMENG_PLATFORM_CODE"],
            getattr(site, "app_version", None) or c["JIMENG_APP_VERSION"],
            client.sign_affixes,
        )
        prepared.headers["Content-Type"] = "application/json"
        prepared.headers["Content-Length"] = str(len(body))
        prepared.body = body
        prepared.hooks = {"response": []}
        return session.send(
            prepared,
            timeout=client.timeout,
            allow_redirects=False,
            proxies=getattr(session, "jimeng_proxies", None) or {},
        )


def refused_error(index: int) -> ContentFilteredError:
    return ContentFilteredError(
        f"Jimeng's safety check refused reference image {index + 1}; nothing was "
        "generated or charged."
    )


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
