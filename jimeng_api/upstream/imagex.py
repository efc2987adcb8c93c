"""Reference images upstream: the ImageX upload.

Protocol doc §5.5 (four calls):

1. ``POST /mweb/v1/get_upload_token`` (Jimeng, signed like every mweb call) →
   temporary ImageX keys (``AKTP…``/``STS2…``) and the ``service_id``;
2. ``GET <imagex>/?Action=ApplyImageUpload&…`` (AWS SigV4, service ``imagex``) →
   a ``StoreUri``, its upload ``Auth``, an upload host and a ``SessionKey``;
3. ``POST <upload host>/upload/v1/<StoreUri>``: the raw bytes, ``Content-CRC32``
   (zlib CRC-32, lower-case hex, 8 digits) and the ``Auth`` verbatim;
4. ``POST <imagex>/?Action=CommitImageUpload&…`` (SigV4 over the JSON body, with
   ``x-amz-content-sha256``) → the ``image_uri`` the blend draft names.

Then, on the CN site, the uploaded images' safety pre-check (``precheck.py``).

The ImageX calls carry no Jimeng cookie: only the temporary keys. The upload
host comes from Jimeng's own answer and is reached with the scheme of the
ImageX base URL (the simulator serves both on one plain-HTTP host).
"""

from __future__ import annotations

import json
import logging
import random
import string
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import gevent.pool
import requests
from requests.adapters import HTTPAdapter

from ..errors import UpstreamError, UpstreamTimeoutError
from .client import JimengClient
from .endpoints import UPLOAD_TOKEN
from .precheck import is_refused
from .sigv4 import amz_date, sigv4_headers

log = logging.getLogger(__name__)

DEFAULT_SERVICE_ID = "tb4s082cfz"  # CN (§5.5, call 1)
UPLOAD_CONCURRENCY = 4
_BASE36 = string.digits + string.ascii_lowercase


def crc32_hex(data: bytes) -> str:
    """The ``Content-CRC32`` value: zlib CRC-32, lower-case hex, zero-padded."""
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


class Garbled(UpstreamError):
    """ImageX answered without JSON (a proxy's page, a cut body): worth a retry."""


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
        self.api_version = config["JIMENG_IMAGEX_API_VERSION"]
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
        """Apply, upload and commit one image; return its ``image_uri``. An
        answer without JSON is a glitch: the three steps are done again (an
        upload is free; nothing is charged before the generate call)."""
        for attempt in range(self.retries + 1):
            try:
                store_uri, auth, host, session_key = self._apply(keys, len(data))
                self._put(keys, host, store_uri, auth, data)
                return self._commit(keys, session_key)
            except Garbled:
                if attempt == self.retries:
                    raise
            time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _apply(self, keys: UploadToken, size: int) -> tuple[str, str, str, str]:
        params = {
            "Action": "ApplyImageUpload",
            "Version": self.api_version,
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
            "Version": self.api_version,
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
            raise Garbled(
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
            if is_refused(self.client, token, uri):
                return index
        return None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
