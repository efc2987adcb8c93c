"""Image models: public names and aliases, upstream keys, what each can do, and
the models each site offers.

Pure logic (no Flask, no I/O). Protocol doc §4 (models) and §7 (the models each
Dreamina site offers); fixes quirk Q4 (unknown models fell back silently to
jimeng-3.0). Sizes are ``sizes.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidRequestError, NotFoundError


@dataclass(frozen=True)
class Model:
    """One public image model and how the upstream knows it."""

    id: str
    key: str
    max_n: int
    modern: bool
    default_resolution: str
    created: int
    #: most reference images it blends (image to image, protocol doc §5.4); 0: none
    max_references: int = 0


# newest first: (id, upstream key, created = fixed approximate release date, UTC)
_MODERN = (  # 4.x/5.x: v2 draft, current draft version, 1-8 images, 2k default
    ("jimeng-5.0", "high_aes_general_v50", 1769904000),
    ("jimeng-4.7", "high_aes_general_v43", 1767225600),
    ("jimeng-4.6", "high_aes_general_v42", 1764547200),
    ("jimeng-4.5", "high_aes_general_v40l", 1761955200),
    ("jimeng-4.1", "high_aes_general_v41", 1759276800),
    ("jimeng-4.0", "high_aes_general_v40", 1756684800),
)
_LEGACY = (  # 3.1 and older: legacy draft version, 1-4 images, 1k default
    ("jimeng-3.1", "high_aes_general_v30l_art_fangzhou:general_v3.0_18b", 1751328000),
    ("jimeng-3.0", "high_aes_general_v30l:general_v3.0_18b", 1744070400),
    ("jimeng-2.1", "high_aes_general_v21_L:general_v2.1_L", 1733011200),
    ("jimeng-2.0-pro", "high_aes_general_v20_L:general_v2.0_L", 1725148800),
    ("jimeng-2.0", "high_aes_general_v20:general_v2.0", 1722470400),
    ("jimeng-1.4", "high_aes_general_v14:general_v1.4", 1717200000),
    ("jimeng-xl-pro", "text2img_xl_sft", 1714521600),
)
_BLEND_ONE = frozenset({"jimeng-3.1", "jimeng-3.0"})  # the forks' blend model: 3.0
MODELS: tuple[Model, ...] = (
    *(Model(i, key, 8, True, "2k", created, 10) for i, key, created in _MODERN),
    *(
        Model(i, key, 4, False, "1k", created, 1 if i in _BLEND_ONE else 0)
        for i, key, created in _LEGACY
    ),
)

# alias -> public id: the [ZZ] fork's names and 5.0's former name
ALIASES: dict[str, str] = {
    "jimeng-image-5.0-lite": "jimeng-5.0",
    "jimeng-5.0-preview": "jimeng-5.0",
    "jimeng-image-4.7": "jimeng-4.7",
    "jimeng-image-4.6": "jimeng-4.6",
    "jimeng-image-4.5": "jimeng-4.5",
    "jimeng-image-4.1": "jimeng-4.1",
    "jimeng-image-4.0": "jimeng-4.0",
    "jimeng-image-3.1": "jimeng-3.1",
    "jimeng-image-3.0": "jimeng-3.0",
    "jimeng-image-2.0-pro": "jimeng-2.0-pro",
    "jimeng": "jimeng-3.0",  # the only id the original listed in /v1/models
}

_BY_ID = {model.id: model for model in MODELS}
_LOOKUP = {**_BY_ID, **{alias: _BY_ID[target] for alias, target in ALIASES.items()}}


#: the models each site offers (protocol doc §7); the CN site has them all
INTERNATIONAL_DEFAULT = "jimeng-4.5"
_US = ("jimeng-4.5", "jimeng-4.1", "jimeng-4.0", "jimeng-3.0")
_ASIA = ("jimeng-5.0", "jimeng-4.6", *_US)
SITE_MODELS: dict[str, tuple[str, ...]] = {
    "cn": tuple(model.id for model in MODELS),
    "us": _US,
    "hk": _ASIA,
    "jp": _ASIA,
    "sg": _ASIA,
}
SITE_NAMES = {
    "cn": "the Jimeng (CN) site",
    "us": "Dreamina US",
    "hk": "Dreamina HK",
    "jp": "Dreamina JP",
    "sg": "Dreamina SG",
}
_BY_KEY = {model.key: model for model in MODELS}


def site_models(region: str) -> list[Model]:
    """Return the models an account of *region* may use, newest first."""
    ids = SITE_MODELS.get(region, SITE_MODELS["cn"])
    return [model for model in MODELS if model.id in ids]


def available_on(model: Model | str, region: str) -> bool:
    """Return whether *model* (a Model or a public id) exists on *region*'s site."""
    model_id = model.id if isinstance(model, Model) else model
    return model_id in SITE_MODELS.get(region, SITE_MODELS["cn"])


def not_on_site(model: Model | str, regions: object) -> InvalidRequestError:
    """The 400 for a model none of *regions* (a region or several) offers; it
    names the models they do offer."""
    model_id = model.id if isinstance(model, Model) else str(model)
    wanted = [regions] if isinstance(regions, str) else sorted(set(regions))
    offered = [m.id for m in MODELS if any(available_on(m, r) for r in wanted)]
    where = ", ".join(SITE_NAMES.get(r, r) for r in wanted)
    return InvalidRequestError(
        f"The model '{shown(model_id, 80)}' is not available on {where}. "
        f"Available models: {', '.join(offered)}.",
        param="model",
        code="model_not_available",
    )


def for_site(model: Model, region: str, *, defaulted: bool = False) -> Model:
    """Return the model to use on *region*: *model* itself, or, when the caller
    named none (*defaulted*) and the site lacks the default, the international
    default (jimeng-4.5); otherwise a 400 naming the site's models."""
    if available_on(model, region):
        return model
    if defaulted:
        return _BY_ID[INTERNATIONAL_DEFAULT]
    raise not_on_site(model, region)


def require_key_on_site(model_key: str, region: str) -> None:
    """Refuse (400) to send the upstream model *model_key* to *region*'s site;
    keys the catalogue does not know are left to the site to judge."""
    model = _BY_KEY.get(model_key)
    if model is not None and not available_on(model, region):
        raise not_on_site(model, region)


def shown(value: object, limit: int = 40) -> str:
    """Quote a caller's value for an error message, cut to *limit* characters."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def list_models() -> list[Model]:
    """Return the public models (no aliases), newest first."""
    return list(MODELS)


def get_model(name: str) -> Model:
    """Return the model for an id or alias (any case, trimmed); unknown -> 404."""
    model = _LOOKUP.get(name.strip().lower()) if isinstance(name, str) else None
    if model is None:
        raise NotFoundError(
            f"The model '{shown(name, 80)}' does not exist. Available models: "
            f"{', '.join(m.id for m in MODELS)}.",
            param="model",
            code="model_not_found",
        )
    return model
