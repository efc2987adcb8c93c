"""The video draft (protocol doc §6.2): what a video job stores, and the body
of the generate call it becomes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .drafts import Draft, compact, component, wrap_draft

VIDEO_MIN_VERSION = "3.0.5"
VIDEO_REFERER_PATH = "/ai-tool/generate?type=video"


@dataclass(frozen=True)
class VideoDraft:
    """What to generate, in upstream terms (stored with the job as a dict)."""

    model_key: str
    prompt: str
    duration_ms: int
    ratio: str
    resolution: str
    send_resolution: bool
    benefit_type: str | None
    seed: int
    draft_version: str
    min_version: str = VIDEO_MIN_VERSION
    #: uploaded frames: ``{"uri", "width", "height"}`` (first; first + last)
    first_frame: dict[str, Any] | None = None
    end_frame: dict[str, Any] | None = None
    kind: str = field(default="video")

    @property
    def function_mode(self) -> str:
        return "first_last_frames"


def load_draft(data: Mapping[str, Any]) -> Draft | VideoDraft:
    """Rebuild the draft a job spec stores (``spec["draft"]``)."""
    if data.get("kind") == "video":
        return VideoDraft(**data)
    return Draft(**data)


def with_frames(
    data: Mapping[str, Any], uris: list[str], sizes: list[Mapping[str, Any]]
) -> VideoDraft:
    """The stored video draft with the frames just uploaded for the account
    that takes the job: the first is the first frame, a second the last."""
    frames = [
        {"uri": uri, "width": size.get("width"), "height": size.get("height")}
        for uri, size in zip(uris, sizes, strict=True)
    ]
    return VideoDraft(
        **{
            **data,
            "first_frame": frames[0] if frames else None,
            "end_frame": frames[1] if len(frames) > 1 else None,
        }
    )


def _uid() -> str:
    return str(uuid.uuid4())


def _frame(frame: Mapping[str, Any]) -> dict[str, Any]:
    uri = frame["uri"]
    return {
        "format": "",
        "height": int(frame.get("height") or 0),
        "id": _uid(),
        "image_uri": uri,
        "name": "",
        "platform_type": 1,
        "source_from": "upload",
        "type": "image",
        "uri": uri,
        "width": int(frame.get("width") or 0),
    }


def video_metrics_extra(d: VideoDraft) -> str:
    """``metrics_extra`` (and ``video_task_extra``): the button the browser
    pressed; ``sceneOptions`` is a JSON string inside the JSON string."""
    key = d.model_key
    scene: dict[str, Any] = {"type": "video", "scene": "BasicVideoGenerateButton"}
    if d.send_resolution:
        scene["resolution"] = d.resolution
    scene.update(
        modelReqKey=key,
        videoDuration=d.duration_ms // 1000,
        materialTypes=[],
        reportParams={
            "enterSource": "generate",
            "vipSource": "generate",
            "extraVipFunctionKey": f"{key}-{d.resolution}"
            if d.send_resolution
            else key,
            "useVipFunctionDetailsReporterHoc": True,
        },
    )
    return compact(
        {
            "promptSource": "custom",
            "isDefaultSeed": 1,
            "originSubmitId": _uid(),
            "isRegenerate": False,
            "enterFrom": "click",
            "position": "page_bottom_box",
            "functionMode": d.function_mode,
            "sceneOptions": compact([scene]),
        }
    )


def video_draft_content(d: VideoDraft, extra: str) -> str:
    """The ``draft_content`` JSON string of a video draft (§6.2)."""
    inputs: dict[str, Any] = {
        "type": "",
        "id": _uid(),
        "min_version": d.min_version,
        "prompt": d.prompt,
        "video_mode": 2,
        "fps": 24,
        "duration_ms": d.duration_ms,
    }
    if d.send_resolution:
        inputs["resolution"] = d.resolution
    if d.first_frame:
        inputs["first_frame_image"] = _frame(d.first_frame)
    if d.end_frame:
        inputs["end_frame_image"] = _frame(d.end_frame)
    inputs["idip_meta_list"] = []
    params = {
        "type": "",
        "id": _uid(),
        "video_gen_inputs": [inputs],
        "video_aspect_ratio": d.ratio,
        "seed": d.seed,
        "model_req_key": d.model_key,
        "priority": 0,
    }
    gen_video = {
        "id": _uid(),
        "type": "",
        "text_to_video_params": params,
        "video_task_extra": extra,
    }
    video = component(
        "video_base_component", "gen_video", "1.0.0", {"gen_video": gen_video}
    )
    video["process_type"] = 1
    return wrap_draft(d, video)


def video_body(d: VideoDraft, submit_id: str, aid: int) -> bytes:
    """The body of ``POST /mweb/v1/aigc_draft/generate`` for a video."""
    extend: dict[str, Any] = {"root_model": d.model_key}
    if d.benefit_type:
        commerce = {
            "benefit_type": d.benefit_type,
            "resource_id": "generate_video",
            "resource_id_type": "str",
            "resource_sub_type": "aigc",
        }
        extend["m_video_commerce_info"] = commerce
        extend["m_video_commerce_info_list"] = [commerce]
    extra = video_metrics_extra(d)
    body = {
        "extend": extend,
        "submit_id": submit_id,
        "metrics_extra": extra,
        "draft_content": video_draft_content(d, extra),
        "http_common_info": {"aid": aid},
    }
    return compact(body).encode()
