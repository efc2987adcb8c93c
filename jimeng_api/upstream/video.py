"""Video models on Jimeng: the catalogue, and what a refused video submit means.

The models, keys and benefit types of protocol-2026-12 §5 (the draft is
``video_drafts.py``, the files of finished videos ``video_items.py``). The
catalogue is volatile (the site reads it from
``video_generate/get_common_config``): benefit types marked [I] below are
inferred from the naming pattern the captures show, not seen.

Errors particular to video:
- ``ret 4013`` (risk control) on a video submit fails fast with
  ``BrowserTokensRequiredError``: Seedance 2.0 needs the browser's anti-bot
  tokens (msToken/a_bogus), which this server does not mint; it is not an
  account failure, so no other account is tried and none is cooled down;
- ``ret 1006``: ``NoVideoCreditsError`` (free gift credits may not pay for
  video, §6.2): the next account may have credits that do;
- ``ret 2061``: the model is retired (the old jimeng-video 1.0–3.5 keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import (
    APIError,
    InsufficientQuotaError,
    NotFoundError,
    PermissionDeniedError,
)
from .video_drafts import VideoDraft

RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
SEEDANCE_2_SECONDS = tuple(range(4, 16))  # any whole second 4-15
ALL_RESOLUTIONS = ("480p", "720p", "1080p")


@dataclass(frozen=True)
class VideoModel:
    """One public video model and what the site accepts for it."""

    id: str
    key: str
    benefit_type: str | None  # "{res}" is replaced by the resolution; None: unknown
    seconds: tuple[int, ...]
    resolutions: tuple[str, ...]
    default_resolution: str
    default_seconds: int = 5
    sends_resolution: bool = True  # the draft names the resolution
    needs_browser_tokens: bool = False  # ret 4013 without msToken/a_bogus
    typical_seconds: float = 120.0  # generation time, for ``progress``
    created: int = 0

    def benefit(self, resolution: str) -> str | None:
        return self.benefit_type.format(res=resolution) if self.benefit_type else None


def _seedance(id_, key, benefit, created, *, resolutions=ALL_RESOLUTIONS, **kw):
    default = "720p" if "720p" in resolutions else resolutions[0]
    return VideoModel(
        id_, key, benefit, SEEDANCE_2_SECONDS, resolutions, default, created=created,
        **kw,
    )  # fmt: skip


#: newest first; the first is the default (``DEFAULT_VIDEO_MODEL``)
VIDEO_MODELS: tuple[VideoModel, ...] = (
    _seedance("jimeng-video-seedance-2.5", "dreamina_seedance_45_pro",
              "seedance_25_{res}_output", 1788220800),
    _seedance("jimeng-video-seedance-2.5-draft", "dreamina_seedance_45_pro_draft",
              "seedance_25_draft_480p_output", 1788220800,
              resolutions=("480p",), typical_seconds=60.0),
    _seedance("jimeng-video-seedance-2.0", "dreamina_seedance_40_pro",
              "dreamina_video_seedance_20_pro", 1770595200, needs_browser_tokens=True),
    _seedance("jimeng-video-seedance-2.0-fast", "dreamina_seedance_40",
              "dreamina_seedance_20_fast", 1770595200, typical_seconds=90.0),
    _seedance("jimeng-video-seedance-2.0-mini", "dreamina_seedance_40_mini",
              "seedance_20_mini_{res}_output", 1780272000),  # [I] benefit
    _seedance("jimeng-video-seedance-2.0-vip", "dreamina_seedance_40_pro_vision",
              "seedance_20_pro_{res}_output", 1780272000),  # [I] benefit
    _seedance("jimeng-video-seedance-2.0-fast-vip", "dreamina_seedance_40_vision",
              "seedance_20_fast_{res}_output", 1780272000),  # [I] benefit
    VideoModel("jimeng-video-seedance-1.0-pro",
               "dreamina_ic_generate_video_model_vgfm_3.0_pro",
               "basic_video_operation_vgfm_v_three_pro", (5, 10), ("1080p",),
               "1080p", sends_resolution=False, created=1749600000),
    VideoModel("jimeng-video-seedance-1.0-fast",
               "dreamina_ic_generate_video_model_vgfm_3.0_fast",
               "basic_video_operation_vgfm_v_three", (5, 10), ("720p", "1080p"),
               "720p", typical_seconds=60.0, created=1749600000),
    # third party; durations and resolutions from the vendor, benefit unknown [I]
    VideoModel("jimeng-video-minimax-h3", "dreamina_minimax_h3", None, (6, 10),
               ("768p", "1080p"), "768p", default_seconds=6, created=1785542400),
)  # fmt: skip

#: the old ids of the forks that still run: the keys §5 lists as Seedance 1.0
ALIASES = {
    "jimeng-video-3.0-pro": "jimeng-video-seedance-1.0-pro",
    "jimeng-video-3.0-fast": "jimeng-video-seedance-1.0-fast",
}
#: the old ids the site answers ``ret 2061`` for (protocol-2026-12 §3)
RETIRED = {
    "jimeng-video-3.5-pro": "dreamina_ic_generate_video_model_vgfm_3.5_pro",
    "jimeng-video-3.5": "dreamina_ic_generate_video_model_vgfm_3.5",
    "jimeng-video-3.0": "dreamina_ic_generate_video_model_vgfm_3.0",
    "jimeng-video-2.0": "dreamina_ic_generate_video_model_vgfm_lite",
    "jimeng-video-s2.0": "dreamina_ic_generate_video_model_vgfm_lite",
    "jimeng-video-2.0-pro": "dreamina_ic_generate_video_model_vgfm1.0",
    "jimeng-video-1.0": "dreamina_ic_generate_video_model_vgfm1.0",
}
#: models of the international site only (protocol doc §6.1)
ELSEWHERE = ("jimeng-video-veo3", "jimeng-video-veo3.1", "jimeng-video-sora2")

_BY_ID = {model.id: model for model in VIDEO_MODELS}
_BY_KEY = {model.key: model for model in VIDEO_MODELS}
_LOOKUP = {
    **_BY_ID,
    **{alias: _BY_ID[target] for alias, target in ALIASES.items()},
    # the names of protocol-2026-12 §5: "seedance-2.5", "minimax-h3", ...
    **{model.id.removeprefix("jimeng-video-"): model for model in VIDEO_MODELS},
}
RETIRED_KEYS = frozenset(RETIRED.values())


def working_models() -> list[str]:
    """The models that need nothing the browser has and this server lacks."""
    return [m.id for m in VIDEO_MODELS if not m.needs_browser_tokens]


def is_video_model(name: object) -> bool:
    """Whether *name* means a video model (live, retired or elsewhere)."""
    if not isinstance(name, str):
        return False
    text = name.strip().lower()
    return text in _LOOKUP or text in RETIRED or text.startswith("jimeng-video-")


def get_video_model(name: str) -> VideoModel:
    """The model for an id or alias (any case); a retired or unknown one is a
    404 naming the models that work."""
    text = name.strip().lower() if isinstance(name, str) else ""
    model = _LOOKUP.get(text)
    if model is not None:
        return model
    shown = str(name)[:80]
    available = ", ".join(m.id for m in VIDEO_MODELS)
    if text in RETIRED:
        raise NotFoundError(
            f"The video model '{shown}' is retired: Jimeng answers ret 2061 for it "
            f"(all old jimeng-video 1.0-3.5 models). Use one of: {available} "
            f"(default {VIDEO_MODELS[0].id}).",
            param="model",
            code="model_retired",
        )
    if text in ELSEWHERE:
        raise NotFoundError(
            f"The video model '{shown}' exists only on the international Dreamina "
            f"site. Models on this site: {available}.",
            param="model",
            code="model_not_available",
        )
    raise NotFoundError(
        f"The video model '{shown}' does not exist. Available video models: "
        f"{available}.",
        param="model",
        code="model_not_found",
    )


def model_by_key(key: str) -> VideoModel | None:
    return _BY_KEY.get(key)


# --- errors of a video submit ---------------------------------------------------


class BrowserTokensRequiredError(APIError):
    """ret 4013 on a video submit: risk control wants what only a browser has."""

    status_code = 403
    type = "permission_error"
    code = "browser_tokens_required"
    retryable = False


class NoVideoCreditsError(InsufficientQuotaError):
    """ret 1006 on a video submit: nothing on the account pays for video."""


def video_submit_error(exc: APIError, draft: VideoDraft) -> APIError:
    """Say what a refused video submit means (the table's error otherwise)."""
    model = model_by_key(draft.model_key)
    name = model.id if model else draft.model_key
    if isinstance(exc, PermissionDeniedError) and exc.code == "risk_control":
        working = ", ".join(working_models())
        if model is not None and model.needs_browser_tokens:
            why = (
                f"{name} needs the browser's anti-bot tokens (msToken/a_bogus), "
                "which this server does not mint"
            )
        else:
            why = "the account or its browser identity looks suspicious to Jimeng"
        return BrowserTokensRequiredError(
            f"Jimeng's risk control refused the video ({exc.message}): {why}. "
            f"It was not retried. Models that work without browser tokens: {working}."
        )
    if isinstance(exc, InsufficientQuotaError):
        return NoVideoCreditsError(
            f"{exc.message} Free (gift) credits may not pay for video on Jimeng; "
            "purchased or VIP credits do (see videoCredit in /token/points)."
        )
    if isinstance(exc, NotFoundError) and exc.code == "model_retired":
        available = ", ".join(m.id for m in VIDEO_MODELS if m.key != draft.model_key)
        return NotFoundError(
            f"Jimeng retired the video model '{name}' (ret 2061). Use one of: "
            f"{available}.",
            param="model",
            code="model_retired",
        )
    return exc


def video_credit(points: Mapping[str, int]) -> int:
    """The credits that can pay for video: purchased and VIP, not the free gift
    credits (protocol doc §6.2: ``ret 1006`` "no relevant benefits")."""
    return int(points.get("purchaseCredit") or 0) + int(points.get("vipCredit") or 0)
