"""The JSON bodies Jimeng's web client sends (protocol doc §3.3, §3.4, §5.1)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any


def compact(obj: Any) -> str:
    """Serialize like the browser's ``JSON.stringify``: compact, UTF-8 kept."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _uid() -> str:
    """Return a fresh id for a draft node (v4: cheaper than v1, same shape)."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Draft:
    """What to generate, in upstream terms."""

    model_key: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    image_ratio: int
    resolution_type: str
    sample_strength: float
    seed: int
    n: int | None  # None: let the upstream choose (4 images)
    draft_version: str
    min_version: str


def _core_param(d: Draft) -> dict[str, Any]:
    return {
        "type": "",
        "id": _uid(),
        "model": d.model_key,
        "prompt": d.prompt,
        "negative_prompt": d.negative_prompt,
        "seed": d.seed,
        "sample_strength": d.sample_strength,
        "image_ratio": d.image_ratio,
        "large_image_info": {
            "type": "",
            "id": _uid(),
            "height": d.height,
            "width": d.width,
            "resolution_type": d.resolution_type,
        },
        "intelligent_ratio": False,
        "generate_type": 0,
    }


def _gen_option(d: Draft) -> dict[str, Any]:
    option: dict[str, Any] = {"type": "", "id": _uid(), "generate_all": False}
    if d.n is not None:
        option["gen_count"] = d.n
    return option


def component(
    kind: str, generate_type: str, min_version: str, abilities: dict[str, Any]
) -> dict[str, Any]:
    """One ``component_list`` entry (every draft kind has this shape)."""
    return {
        "type": kind,
        "id": _uid(),
        "min_version": min_version,
        "aigc_mode": "workbench",
        "metadata": {
            "type": "",
            "id": _uid(),
            "created_platform": 3,
            "created_platform_version": "",
            "created_time_in_ms": str(int(time.time() * 1000)),
            "created_did": "",
        },
        "generate_type": generate_type,
        "abilities": {"type": "", "id": _uid(), **abilities},
    }


def wrap_draft(d: Any, component: dict[str, Any], min_version: str = "") -> str:
    """The ``draft_content`` envelope around one component (every draft kind)."""
    return compact(
        {
            "type": "draft",
            "id": _uid(),
            "min_version": min_version or d.min_version,
            "min_features": [],
            "is_from_tsn": True,
            "version": d.draft_version,
            "main_component_id": component["id"],
            "component_list": [component],
        }
    )


def draft_content(d: Draft) -> str:
    """Return the ``draft_content`` JSON string of a text-to-image draft (§5.1)."""
    abilities = {
        "generate": {"type": "", "id": _uid(), "core_param": _core_param(d)},
        "gen_option": _gen_option(d),
    }
    return wrap_draft(
        d, component("image_base_component", "generate", d.min_version, abilities)
    )


def metrics_extra(
    d: Draft, submit_id: str, abilities: list[dict[str, Any]] | None = None
) -> str:
    """Return the ``metrics_extra`` JSON string (``sceneOptions`` is a string too)."""
    scene = {
        "type": "image",
        "scene": "ImageBasicGenerate",
        "modelReqKey": d.model_key,
        "resolutionType": d.resolution_type,
        "abilityList": abilities or [],
        "benefitCount": d.n or 4,
        "reportParams": {
            "enterSource": "generate",
            "vipSource": "generate",
            "extraVipFunctionKey": f"{d.model_key}-{d.resolution_type}",
            "useVipFunctionDetailsReporterHoc": True,
        },
    }
    return compact(
        {
            "promptSource": "custom",
            "generateCount": 1,
            "enterFrom": "click",
            "position": "page_bottom_box",
            "sceneOptions": compact([scene]),
            "isBoxSelect": False,
            "isCutout": False,
            "generateId": submit_id,
            "isRegenerate": False,
        }
    )


def generate_body(d: Draft, submit_id: str, aid: int) -> bytes:
    """Return the body of ``POST /mweb/v1/aigc_draft/generate`` (a blend draft
    for a ``BlendDraft``, §5.4)."""
    blend = isinstance(d, BlendDraft)
    body = {
        "extend": {"root_model": d.model_key},
        "submit_id": submit_id,
        "metrics_extra": (
            blend_metrics_extra(d, submit_id) if blend else metrics_extra(d, submit_id)
        ),
        "draft_content": blend_draft_content(d) if blend else draft_content(d),
        "http_common_info": {"aid": aid},
    }
    return compact(body).encode()


# --- image to image ("blend", §5.4) ----------------------------------------------

BLEND_MIN_VERSION = "3.2.9"
MAX_BLEND_IMAGES = 10
#: the web client's reference chips are ``blob:`` URLs of the page (§5.4)
BLOB_ORIGIN = "https://jimeng.jianying.com"


@dataclass(frozen=True)
class BlendImage:
    """One uploaded reference image and how strongly it steers the result."""

    uri: str
    strength: float = 0.5


@dataclass(frozen=True)
class BlendDraft(Draft):
    """A draft with 1-10 reference images: sent as a "blend" generation."""

    images: tuple[BlendImage, ...] = ()
    blend_min_version: str = BLEND_MIN_VERSION  # JIMENG_BLEND_MIN_VERSION


def blend_prompt(prompt: str, count: int) -> str:
    """``#`` twice per image before the prompt: the placeholders the web UI
    maps to its reference chips ([IP]; 1 image → ``##``, 2 → ``####``)."""
    return "#" * (2 * count) + prompt


def _blend_ability(image: BlendImage) -> dict[str, Any]:
    return {
        "type": "",
        "id": _uid(),
        "name": "byte_edit",
        "image_uri_list": [image.uri],
        "image_list": [
            {
                "type": "image",
                "id": _uid(),
                "source_from": "upload",
                "platform_type": 1,
                "name": "",
                "image_uri": image.uri,
                "width": 0,
                "height": 0,
                "format": "",
                "uri": image.uri,
            }
        ],
        "strength": image.strength,
    }


def _blend(d: BlendDraft) -> dict[str, Any]:
    count = len(d.images)
    if not 1 <= count <= MAX_BLEND_IMAGES:
        raise ValueError(f"a blend takes 1-{MAX_BLEND_IMAGES} images, not {count}")
    blend: dict[str, Any] = {"type": "", "id": _uid()}
    if count >= 2:
        blend["min_version"] = d.blend_min_version
    blend.update(
        {
            "min_features": [],
            "core_param": {
                "type": "",
                "id": _uid(),
                "model": d.model_key,
                "prompt": blend_prompt(d.prompt, count),
                "sample_strength": d.sample_strength,
                "large_image_info": {
                    "type": "",
                    "id": _uid(),
                    "min_version": d.min_version,
                    "height": d.height,
                    "width": d.width,
                    "resolution_type": d.resolution_type,
                },
                "intelligent_ratio": False,  # image to image keeps image_ratio
                "image_ratio": d.image_ratio,
                "negative_prompt": d.negative_prompt,
            },
            "ability_list": [_blend_ability(image) for image in d.images],
            "prompt_placeholder_info_list": [
                {"type": "", "id": _uid(), "ability_index": index}
                for index in range(count)
            ],
            "postedit_param": {"type": "", "id": _uid(), "generate_type": 0},
        }
    )
    return blend


def blend_draft_content(d: BlendDraft) -> str:
    """Return the ``draft_content`` JSON string of a blend draft (§5.4):
    ``abilities.blend`` instead of ``generate``, ``gen_option`` beside it."""
    abilities = {"blend": _blend(d), "gen_option": _gen_option(d)}
    blend = component("image_base_component", "blend", d.min_version, abilities)
    return wrap_draft(d, blend, d.blend_min_version)


def blend_metrics_extra(d: BlendDraft, submit_id: str) -> str:
    """``metrics_extra`` of a blend: the §5.1 form with one ``byte_edit``
    ability per reference image."""
    abilities = [
        {
            "abilityName": "byte_edit",
            "strength": image.strength,
            "source": {"imageUrl": f"blob:{BLOB_ORIGIN}/{_uid()}"},
        }
        for image in d.images
    ]
    return metrics_extra(d, submit_id, abilities)


_SCENES = [
    ("smart_crop", 360, 360, "smart_crop-w:360-h:360"),
    ("smart_crop", 480, 480, "smart_crop-w:480-h:480"),
    ("smart_crop", 720, 720, "smart_crop-w:720-h:720"),
    ("smart_crop", 720, 480, "smart_crop-w:720-h:480"),
    ("normal", 2400, 2400, "2400"),
    ("normal", 1080, 1080, "1080"),
    ("normal", 720, 720, "720"),
    ("normal", 480, 480, "480"),
    ("normal", 360, 360, "360"),
]
IMAGE_INFO = compact(
    {
        "width": 2048,
        "height": 2048,
        "format": "webp",
        "image_scene_list": [
            {"scene": s, "width": w, "height": h, "uniq_key": k, "format": "webp"}
            for s, w, h, k in _SCENES
        ],
    }
)


def history_body(history_ids: list[str], aid: int) -> bytes:
    """Return the body of ``POST /mweb/v1/get_history_by_ids`` for some records
    (the browser polls its whole list in one call)."""
    ids = compact(list(history_ids))
    return (
        f'{{"history_ids":{ids},"image_info":{IMAGE_INFO},'
        f'"http_common_info":{{"aid":{aid}}}}}'
    ).encode()


def submit_lookup_body(submit_ids: list[str]) -> bytes:
    """Return the body that finds records by the ``submit_id`` we chose."""
    return compact({"submit_ids": list(submit_ids)}).encode()
