"""Which site the simulator plays (protocol §7): the CN site or a Dreamina one.

``--site cn`` (the default) is jimeng.jianying.com; ``--site us`` is Dreamina
US (dreamina-api.us.capcut.com + commerce.us.capcut.com); ``--site sg`` is the
Asian Dreamina hosts, which serve the HK, JP and SG regions. Strict mode then
checks what differs between them: the app id, the ``region`` query, ``webId``
(CN only), ``Lan``/``Loc``, the Origin/Referer, the models on offer, and the
ImageX service id, store prefix and SigV4 region.
"""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.wrappers import Request

from .settings import KNOWN_MODELS, SITE_ORIGIN, SimSettings

DREAMINA_ORIGIN = "https://dreamina.capcut.com"
_US_KEYS = (
    "high_aes_general_v40l",  # 4.5
    "high_aes_general_v41",  # 4.1
    "high_aes_general_v40",  # 4.0
    "high_aes_general_v30l:general_v3.0_18b",  # 3.0
    "external_model_gemini_flash_image_v25",  # nanobanana
    "dreamina_image_lib_1",  # nanobananapro
)
_ASIA_KEYS = ("high_aes_general_v50", "high_aes_general_v42", *_US_KEYS)


@dataclass(frozen=True)
class Site:
    """What one site accepts."""

    name: str
    aid: str
    #: ``region`` query value (upper case) -> (Lan, Loc) the browser sends with it
    regions: dict[str, tuple[str, str]]
    web_id: bool  # CN: webId/web_id required; Dreamina: none is sent
    models: frozenset[str]
    service_field: str  # where get_upload_token names the ImageX service
    service_id: str
    store_prefix: str
    imagex_region: str

    @property
    def dreamina(self) -> bool:
        return self.name != "cn"


SITES: dict[str, Site] = {
    "cn": Site(
        "cn",
        "513695",
        {"CN": ("zh-Hans", "cn")},
        web_id=True,
        # every key, nanobanana's too: test_all_known_models_accepted expects it
        # (§4.2 says the CN site refuses them)
        models=frozenset(KNOWN_MODELS),
        service_field="service_id",
        service_id="tb4s082cfz",
        store_prefix="tos-cn-i-",
        imagex_region="cn-north-1",
    ),
    "us": Site(
        "us",
        "513641",
        {"US": ("en", "us")},
        web_id=False,
        models=frozenset(_US_KEYS),
        service_field="space_name",
        service_id="wopfjsm1ax",
        store_prefix="tos-useast5-i-",
        imagex_region="us-east-1",
    ),
    "sg": Site(
        "sg",
        "513641",
        {"HK": ("en", "hk"), "JP": ("ja", "jp"), "SG": ("en", "sg")},
        web_id=False,
        models=frozenset(_ASIA_KEYS),
        service_field="space_name",
        service_id="wopfjsm1ax",
        store_prefix="tos-alisg-i-",
        imagex_region="ap-southeast-1",
    ),
}


def site_of(settings: SimSettings) -> Site:
    return SITES[settings.site]


def origin_of(settings: SimSettings) -> str:
    """The Origin/Referer requests must carry: ``site_origin``, or, when it was
    left at the CN default on a Dreamina site, https://dreamina.capcut.com."""
    if settings.site != "cn" and settings.site_origin == SITE_ORIGIN:
        return DREAMINA_ORIGIN
    return settings.site_origin


def site_violation(request: Request, family: str, site: Site) -> str | None:
    """The site's own rules (strict mode), after the Sign checks."""
    headers, args = request.headers, request.args
    appid = headers.get("Appid", "")
    if appid != site.aid:
        return f"Appid {appid!r} is not the {site.name} site's {site.aid!r}"
    lan, loc = headers.get("Lan"), headers.get("Loc")
    if family == "commerce":
        locs = {pair[1] for pair in site.regions.values()}
        if site.dreamina and loc is not None and loc not in locs:
            return f"Loc {loc!r} is not one of the {site.name} site's"
        return None
    region = args.get("region", "")
    expected = site.regions.get(region.upper())
    if expected is None:
        allowed = "/".join(site.regions)
        return f"region {region!r} is not served by the {site.name} site ({allowed})"
    if not site.web_id and (args.get("webId") or args.get("web_id")):
        return "webId sent to a Dreamina site (its client sends none)"
    if site.dreamina and (lan, loc) != expected:
        return (
            f"Lan/Loc {lan!r}/{loc!r} do not match region {region!r} "
            f"({expected[0]!r}/{expected[1]!r})"
        )
    return None
