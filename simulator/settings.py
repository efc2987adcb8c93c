"""Knobs of the Jimeng upstream simulator (dataclass + CLI flags + JSON updates)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: Upstream model keys the simulator accepts (protocol §4.1 and §4.2).
KNOWN_MODELS: dict[str, str] = {
    "high_aes_general_v50": "图片 5.0 Lite",
    "high_aes_general_v43": "图片 4.7",
    "high_aes_general_v42": "图片 4.6",
    "high_aes_general_v40l": "图片 4.5",
    "high_aes_general_v41": "图片 4.1",
    "high_aes_general_v40": "图片 4.0",
    "high_aes_general_v30l_art_fangzhou:general_v3.0_18b": "图片 3.1",
    "high_aes_general_v30l:general_v3.0_18b": "图片 3.0",
    "high_aes_general_v21_L:general_v2.1_L": "图片 2.1",
    "high_aes_general_v20_L:general_v2.0_L": "图片 2.0 Pro",
    "high_aes_general_v20:general_v2.0": "图片 2.0",
    "high_aes_general_v14:general_v1.4": "图片 1.4",
    "text2img_xl_sft": "图片 XL Pro",
    "external_model_gemini_flash_image_v25": "Nano Banana",
    "dreamina_image_lib_1": "Nano Banana Pro",
}

#: Retired model keys (protocol-2026-12 §3: ret 2061 for "all old jimeng-video
#: 1.0–3.5 models"), and the public names they went by. The two vgfm 3.0 keys
#: that §5 lists as live (seedance-1.0-pro/-fast) are not retired.
RETIRED_MODELS: list[str] = [
    "dreamina_ic_generate_video_model_vgfm_3.5_pro",
    "dreamina_ic_generate_video_model_vgfm_3.0",
    "dreamina_ic_generate_video_model_vgfm_lite",
    "dreamina_ic_generate_video_model_vgfm1.0",
    "jimeng-video-3.5-pro",
    "jimeng-video-3.0",
    "jimeng-video-2.0",
    "jimeng-video-2.0-pro",
]
SITE_ORIGIN = "https://jimeng.jianying.com"

#: Endpoint groups usable in ``fault_scope`` (besides single endpoint names).
FAULT_GROUPS: dict[str, tuple[str, ...]] = {
    "generate": ("generate",),
    "history": ("history",),
    "commerce": ("user_credit", "credit_receive"),
    "passport": ("passport",),
    "upload": ("upload_token", "imagex_apply", "imagex_upload", "imagex_commit"),
    "image": ("image",),
}


def _knob(default: Any, help_text: str, **extra: Any) -> Any:
    meta = {"help": help_text, **extra}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class SimSettings:
    """Every behaviour knob; all can be changed at run time (POST /__sim/config)."""

    task_seconds: float = _knob(
        5.0, "task processing time (s): uniform mean, or lognormal median"
    )
    task_jitter: float = _knob(0.3, "uniform: relative jitter (0.3 = ±30%%)")
    duration_model: str = _knob(
        "uniform", "uniform|lognormal task durations", choices=("uniform", "lognormal")
    )
    task_sigma: float = _knob(0.5, "lognormal: sigma of ln(duration)", minimum=0)
    time_scale: float = _knob(
        1.0, "multiplies every simulated duration (tasks, queue, stalls)", minimum=0
    )
    queue_seconds: float = _knob(
        0.0, "mean queue wait before processing (exponential; 0 = none)", minimum=0
    )
    stall_rate: float = _knob(
        0.0, "rate of tasks stuck in 45 with k < n images", rate=True
    )
    stall_seconds: float | None = _knob(
        None, "how long a stall lasts (s; default: forever)", minimum=0
    )
    partial_fail_rate: float = _knob(
        0.0, "rate of tasks ending in 30 after k < n images", rate=True
    )
    partial_fail_codes: list[str] = _knob(
        ["1017", "2038"], "fail_code of a partial failure (random pick; comma list)"
    )
    final_without_items_rate: float = _knob(
        0.0, "rate of tasks whose first final (50) poll lacks item_list", rate=True
    )
    strict: bool = _knob(True, "check Sign, Device-Time, query params and headers")
    device_time_skew: float = _knob(300.0, "allowed |Device-Time - now| (s)")
    min_appvr: str | None = _knob(None, "Appvr below this → ret 3018")
    blocked_words: list[str] = _knob(
        ["blockedword", "违禁"], "prompt words → status 30 fail_code 2038 (comma list)"
    )
    invalid_session_prefix: str = _knob(
        "invalid", "session ids starting with this are invalid (1015)"
    )
    initial_credits: int = _knob(100, "gift credits of a new session")
    daily_grant: int = _knob(60, "credits added by the daily credit_receive")
    generation_cost: int = _knob(1, "credits per generation (per image if set)")
    cost_per_image: bool = _knob(False, "multiply generation_cost by gen_count")
    legacy_credits: bool = _knob(False, "insufficient credits → ret 5000, not 1006")
    default_gen_count: int = _knob(4, "images when the draft has no gen_count")
    max_gen_count: int = _knob(8, "largest accepted gen_count")
    max_running_per_session: int = _knob(
        0, "unfinished tasks per session before the limit answer (0 = unlimited)"
    )
    parallel_limit_ret: str = _knob(
        "1310",
        "answer at the limit: 1310 (2026) or 1010 (old)",
        choices=("1310", "1010"),
    )
    retired_models: list[str] = _knob(
        RETIRED_MODELS, "model keys/names refused with ret 2061 (comma list)"
    )
    site_origin: str = _knob(
        SITE_ORIGIN, "strict: the Origin/Referer every request must carry if any"
    )
    image_url_ttl: float = _knob(3600.0, "image URL expiry (x-expires) in seconds")
    image_size: int = _knob(
        256, "long side of the served PNGs (px; the draft's aspect ratio)", minimum=16
    )
    public_base_url: str | None = _knob(
        None, "base URL put in image URLs (default: the request's host)"
    )
    day_utc_offset_hours: float = _knob(8.0, "time zone of the credit 'day' (h)")
    fault_http_5xx: float = _knob(0.0, "rate of HTTP 502/503 with an HTML body")
    fault_reset: float = _knob(0.0, "rate of abrupt connection resets")
    fault_slow: float = _knob(0.0, "rate of answers delayed by slow_seconds")
    fault_non_json: float = _knob(0.0, "rate of HTTP 200 with a non-JSON body")
    fault_numeric_ret: float = _knob(0.0, "rate of numeric ret (0 instead of '0')")
    fault_missing_item_list: float = _knob(0.0, "rate of history without item_list")
    fault_string_status: float = _knob(0.0, "rate of history status as a string")
    fault_null_aigc_data: float = _knob(0.0, "rate of generate with aigc_data null")
    slow_seconds: float = _knob(20.0, "delay of a slow answer (s)")
    fault_scope: list[str] = _knob(
        ["all"],
        "endpoints faults hit: all|generate|history|commerce|passport|"
        "upload|image or endpoint names (comma list)",
    )
    video_task_seconds: float = _knob(
        20.0, "video processing time (s), spread like task_seconds", minimum=0
    )
    video_cost: int = _knob(10, "credits per video")
    video_gift_spendable: bool = _knob(
        False, "gift credits pay for video too (default: purchased and VIP only)"
    )
    video_shark_models: list[str] = _knob(
        ["dreamina_seedance_40_pro"],
        "video model keys refused with ret 4013 without a_bogus (comma list)",
    )
    site: str = _knob(
        "cn",
        "cn|us|sg: play the CN site or a Dreamina one (protocol §7)",
        choices=("cn", "us", "sg"),
    )
    seed: int | None = _knob(None, "random seed (durations, faults, ids)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON-ish dict of changes; raises ValueError on bad keys/values."""
        names = {f.name: f for f in dataclasses.fields(self)}
        parsed = {}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown setting {key!r}")
            parsed[key] = _coerce(names[key], value)
        for key, value in parsed.items():
            setattr(self, key, value)

    def copy(self) -> SimSettings:
        return dataclasses.replace(
            self,
            **{
                f.name: list(getattr(self, f.name))
                for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), list)
            },
        )


def _kind(f: dataclasses.Field) -> str:
    text = str(f.type)
    for kind in ("list", "bool", "float", "int", "str"):
        if text.startswith(kind):
            return kind
    raise TypeError(f"unsupported setting type {f.type}")


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    optional = "None" in str(f.type)
    if value is None or (optional and value in ("", "none", "None")):
        if optional:
            return None
        raise ValueError(f"{f.name} may not be null")
    kind = _kind(f)
    if kind == "list":
        if isinstance(value, str):
            return [w.strip() for w in value.split(",") if w.strip()]
        if isinstance(value, list | tuple) and all(isinstance(w, str) for w in value):
            return list(value)
        raise ValueError(f"{f.name} must be a list of strings")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{f.name} must be a boolean")
    try:
        result = {"float": float, "int": int, "str": str}[kind](value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{f.name}: {exc}") from None
    is_rate = f.name.startswith("fault_") or f.metadata.get("rate")
    if is_rate and kind == "float" and not 0 <= result <= 1:
        raise ValueError(f"{f.name} must be within 0..1")
    if "minimum" in f.metadata and result < f.metadata["minimum"]:
        raise ValueError(f"{f.name} must be >= {f.metadata['minimum']}")
    choices = f.metadata.get("choices")
    if choices and result not in choices:
        raise ValueError(f"{f.name} must be one of {', '.join(choices)}")
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per knob (``--no-strict`` style for booleans)."""
    for f in dataclasses.fields(SimSettings):
        flag = "--" + f.name.replace("_", "-")
        kind = _kind(f)
        if kind == "bool":
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f.metadata["help"],
            )
        else:
            parser.add_argument(flag, default=None, help=f.metadata["help"])


def from_namespace(ns: argparse.Namespace) -> SimSettings:
    """Build settings from parsed CLI flags (unset flags keep their defaults)."""
    settings = SimSettings()
    changes = {
        f.name: getattr(ns, f.name)
        for f in dataclasses.fields(SimSettings)
        if getattr(ns, f.name, None) is not None
    }
    settings.update(changes)
    return settings
