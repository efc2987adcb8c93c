"""The sites: the constants the CN site's and each Dreamina site's browser
client send (protocol doc §1.7, §7), and where their uploads go.

``Origin``/``Referer`` are the site's whatever host the calls go to (an
operator may point a base URL at a relay); Dreamina sites send no ``webId``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

CN = "cn"
#: the Dreamina sites a token prefix selects (protocol doc §7)
DREAMINA_REGIONS = ("us", "hk", "jp", "sg")
REGIONS = (CN, *DREAMINA_REGIONS)

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

    def _site_or(self, field: str, cn_key: str) -> str:
        """A Dreamina site's own value, or the CN site's setting."""
        return _DREAMINA[self.region][field] if self.dreamina else self.config[cn_key]

    @property
    def region_param(self) -> str:
        return self._site_or("param", "JIMENG_REGION")

    @property
    def lang(self) -> str:
        return self._site_or("lang", "JIMENG_LANG")

    @property
    def loc(self) -> str:
        return self._site_or("loc", "JIMENG_LOC")

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
