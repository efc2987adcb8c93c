"""Validation of the ``aigc_draft/generate`` body (§3.3, §5.1, §5.4; 2061)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .settings import KNOWN_MODELS, SimSettings
from .sites import SITES

MIN_SIDE, MAX_SIDE = 64, 8192
IMAGE_RATIOS = set(range(0, 9)) | set(range(101, 109))
RETIRED_ERRMSG = "model no longer available"


class DraftError(Exception):
    """A refused generate body: ``ret``/``errmsg`` to answer and a reason to log."""

    def __init__(self, ret: str, errmsg: str, reason: str) -> None:
        super().__init__(reason)
        self.ret, self.errmsg, self.reason = ret, errmsg, reason


@dataclass
class GenerateRequest:
    submit_id: str | None
    model: str
    prompt: str
    width: int
    height: int
    gen_count: int
    blend_uris: list[str] = field(default_factory=list)


def _common(reason: str) -> DraftError:
    return DraftError("1002", "common error", reason)


def _invalid(reason: str) -> DraftError:
    return DraftError("1000", "invalid parameter", reason)


def _json_string(body: dict[str, Any], key: str, required: bool) -> Any:
    raw = body.get(key)
    if raw is None and not required:
        return None
    if not isinstance(raw, str):
        raise _common(f"{key} must be a JSON string, got {type(raw).__name__}")
    try:
        return json.loads(raw)
    except ValueError:
        raise _common(f"{key} is not valid JSON") from None


def _obj(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise _invalid(f"{where}.{key} missing or not an object")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _main_component(draft: dict[str, Any]) -> dict[str, Any]:
    components = draft.get("component_list")
    if not isinstance(components, list) or not components:
        raise _invalid("draft.component_list missing or empty")
    main_id = draft.get("main_component_id")
    for comp in components:
        if isinstance(comp, dict) and comp.get("id") == main_id:
            return comp
    if not isinstance(components[0], dict):
        raise _invalid("draft.component_list[0] is not an object")
    return components[0]


def _gen_count(abilities: dict, holder: dict, settings: SimSettings) -> int:
    for parent in (abilities, holder):
        option = parent.get("gen_option")
        if isinstance(option, dict) and "gen_count" in option:
            count = option["gen_count"]
            if not _is_int(count) or not 1 <= count <= settings.max_gen_count:
                raise _invalid(
                    f"gen_count must be an int in 1..{settings.max_gen_count}"
                )
            return count
    return settings.default_gen_count


def _blend_uris(holder: dict[str, Any]) -> list[str]:
    uris: list[str] = []
    for ability in holder.get("ability_list") or []:
        if not isinstance(ability, dict):
            raise _invalid("blend.ability_list entries must be objects")
        uris += [u for u in ability.get("image_uri_list") or [] if isinstance(u, str)]
        for image in ability.get("image_list") or []:
            if isinstance(image, dict) and isinstance(image.get("image_uri"), str):
                uris.append(image["image_uri"])
    if not uris:
        raise _invalid("blend without reference images")
    return list(dict.fromkeys(uris))


def _check_core(core: dict[str, Any]) -> tuple[int, int]:
    if not isinstance(core.get("prompt"), str):
        raise _invalid("core_param.prompt missing or not a string")
    info = _obj(core, "large_image_info", "core_param")
    width, height = info.get("width"), info.get("height")
    for name, side in (("width", width), ("height", height)):
        if not _is_int(side) or not MIN_SIDE <= side <= MAX_SIDE:
            raise _invalid(f"large_image_info.{name} must be an int in 64..8192")
    strength = core.get("sample_strength")
    if strength is not None and (
        isinstance(strength, bool)
        or not isinstance(strength, int | float)
        or not 0 <= strength <= 1
    ):
        raise _invalid("sample_strength must be a number in 0..1")
    ratio = core.get("image_ratio")
    if ratio is not None and (not _is_int(ratio) or ratio not in IMAGE_RATIOS):
        raise _invalid(f"unknown image_ratio {ratio!r}")
    return width, height


def parse_generate(body: Any, settings: SimSettings) -> GenerateRequest:
    """Validate a generate body; raise DraftError with the upstream-like code."""
    if not isinstance(body, dict):
        raise _common("body is not a JSON object")
    draft = _json_string(body, "draft_content", required=True)
    _json_string(body, "metrics_extra", required=False)
    if not isinstance(draft, dict) or draft.get("type") != "draft":
        raise _invalid("draft_content is not a draft object")
    root_model = _obj(body, "extend", "body").get("root_model")
    if isinstance(root_model, str) and root_model in settings.retired_models:
        raise DraftError("2061", RETIRED_ERRMSG, f"retired model {root_model!r}")
    submit_id = body.get("submit_id")
    if submit_id is not None and not isinstance(submit_id, str):
        raise _invalid("submit_id must be a string")
    component = _main_component(draft)
    abilities = _obj(component, "abilities", "component")
    kind = "blend" if "blend" in abilities else "generate"
    holder = _obj(abilities, kind, "abilities")
    if component.get("generate_type", kind) != kind:
        raise _invalid(f"component generate_type does not match abilities.{kind}")
    core = _obj(holder, "core_param", kind)
    model = core.get("model")
    if model != root_model:
        raise _invalid(f"root_model {root_model!r} != core_param.model {model!r}")
    if model not in KNOWN_MODELS:
        raise _invalid(f"unknown model key {model!r}")
    site = SITES[settings.site]
    if model not in site.models:
        raise _invalid(f"model {model!r} is not offered on the {site.name} site")
    width, height = _check_core(core)
    return GenerateRequest(
        submit_id=submit_id,
        model=model,
        prompt=core["prompt"],
        width=width,
        height=height,
        gen_count=_gen_count(abilities, holder, settings),
        blend_uris=_blend_uris(holder) if kind == "blend" else [],
    )
