"""Video jobs: from request parameters to a spec, and from a job to OpenAI's
video object.

``seconds`` and ``size`` take OpenAI's values and each model's own:

* ``seconds``: a duration the model allows is used as it is; OpenAI's ``4``,
  ``8`` and ``12`` map to the nearest one it allows (the longer on a tie);
  anything else is a 400 naming the allowed values.
* ``size``: a ``WIDTHxHEIGHT`` the model makes (its ratios × resolutions) is
  used as it is; OpenAI's ``720x1280``, ``1280x720``, ``1024x1792`` and
  ``1792x1024`` map to the nearest ratio (log scale) and the resolution whose
  short side is nearest among those the model offers. ``ratio`` +
  ``resolution`` (our extension) say the same in Jimeng's terms; give either.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from .errors import InvalidRequestError
from .upstream.video import RATIOS, VideoModel, get_video_model
from .upstream.video_drafts import VideoDraft

OPENAI_SECONDS = (4, 8, 12)
OPENAI_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
DEFAULT_RATIO = "16:9"
DEFAULT_VIDEO_MODEL = "jimeng-video-seedance-2.5"
POLL_AFTER_MS = 2000  # ``openai-poll-after-ms``: how often the SDK's poll asks


def _bad(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def _choices(values: tuple[Any, ...]) -> str:
    return ", ".join(str(v) for v in values)


def resolve_seconds(model: VideoModel, value: object, param: str = "seconds") -> int:
    """The duration to ask for (see the module docstring)."""
    if value is None:
        return model.default_seconds
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or len(text) > 4:
        raise _bad(
            f"'{param}' must be a whole number of seconds, got {text[:20]!r}.", param
        )
    seconds = int(text)
    if seconds in model.seconds:
        return seconds
    if seconds in OPENAI_SECONDS:
        return min(model.seconds, key=lambda s: (abs(s - seconds), -s))
    raise _bad(
        f"{model.id} makes videos of {_span(model.seconds)} seconds; got {seconds}. "
        f"OpenAI's {_choices(OPENAI_SECONDS)} are mapped to the nearest.",
        param,
    )


def _span(seconds: tuple[int, ...]) -> str:
    if len(seconds) > 3 and seconds == tuple(range(seconds[0], seconds[-1] + 1)):
        return f"{seconds[0]}-{seconds[-1]}"
    return _choices(seconds)


def nominal_size(ratio: str, resolution: str) -> tuple[int, int]:
    """The pixels of *resolution* (its short side) at *ratio*, even sides."""
    short = int(resolution.removesuffix("p"))
    a, b = (int(x) for x in ratio.split(":"))
    long = 2 * round(short * max(a, b) / min(a, b) / 2)
    return (long, short) if a >= b else (short, long)


def model_sizes(model: VideoModel) -> dict[str, tuple[str, str]]:
    """``"WxH": (ratio, resolution)`` for every size *model* makes."""
    return {
        "{}x{}".format(*nominal_size(ratio, res)): (ratio, res)
        for res in model.resolutions
        for ratio in RATIOS
    }


def _nearest(model: VideoModel, width: int, height: int) -> tuple[str, str]:
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        a, b = (int(x) for x in ratio.split(":"))
        return abs(target - math.log(a / b))

    ratio = min(RATIOS, key=distance)
    short = min(width, height)
    res = min(model.resolutions, key=lambda r: abs(int(r.removesuffix("p")) - short))
    return ratio, res


def _text(value: object, param: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"'{param}' must be a string.", param)
    return "".join(value.split()).lower()


def resolve_shape(
    model: VideoModel, size: object, ratio: object, resolution: object
) -> tuple[str, str]:
    """``(ratio, resolution)`` from ``size`` or ``ratio``/``resolution``."""
    size, ratio, resolution = (
        _text(size, "size"),
        _text(ratio, "ratio"),
        _text(resolution, "resolution"),
    )
    if size is not None and (ratio is not None or resolution is not None):
        raise _bad("Give either 'size' or 'ratio'/'resolution', not both.", "size")
    if size is not None:
        size = size.replace("*", "x").replace("×", "x")
        own = model_sizes(model)
        if size in own:
            return own[size]
        if size in OPENAI_SIZES:
            width, height = (int(x) for x in size.split("x"))
            return _nearest(model, width, height)
        raise _bad(
            f"Invalid size '{size[:20]}' for {model.id}: use one of OpenAI's "
            f"{_choices(OPENAI_SIZES)} (mapped to the nearest) or one of the "
            f"model's own: {_choices(tuple(own))}.",
            "size",
        )
    if ratio is not None and ratio not in RATIOS:
        raise _bad(
            f"Invalid ratio '{ratio[:20]}': use one of {_choices(RATIOS)}.", "ratio"
        )
    if resolution is not None and resolution not in model.resolutions:
        raise _bad(
            f"{model.id} makes {_choices(model.resolutions)} videos; got "
            f"'{resolution[:20]}'.",
            "resolution",
        )
    return ratio or DEFAULT_RATIO, resolution or model.default_resolution


def video_spec(
    config: Mapping[str, Any],
    *,
    model_name: str | None,
    prompt: str,
    seconds: object = None,
    size: object = None,
    ratio: object = None,
    resolution: object = None,
    seed: int | None = None,
    frames: tuple[dict[str, Any], ...] = (),
    seconds_param: str = "seconds",
) -> dict[str, Any]:
    """Resolve the model, duration and shape and build the upstream draft.

    *frames*: the uploaded first frame, or first and last (``{"uri", "width",
    "height"}``)."""
    name = model_name or config.get("DEFAULT_VIDEO_MODEL") or DEFAULT_VIDEO_MODEL
    model = get_video_model(name)
    duration = resolve_seconds(model, seconds, seconds_param)
    ratio, resolution = resolve_shape(model, size, ratio, resolution)
    draft = VideoDraft(
        model_key=model.key,
        prompt=prompt,
        duration_ms=duration * 1000,
        ratio=ratio,
        resolution=resolution,
        send_resolution=model.sends_resolution,
        benefit_type=model.benefit(resolution),
        seed=random.randrange(2**32) if seed is None else seed,
        draft_version=config["JIMENG_DRAFT_VERSION"],
        first_frame=frames[0] if frames else None,
        end_frame=frames[1] if len(frames) > 1 else None,
    )
    width, height = nominal_size(ratio, resolution)
    return {
        "model": model.id,
        "n": 1,
        "draft": asdict(draft),
        "prompt": prompt,
        "seconds": str(duration),
        "size": f"{width}x{height}",
        "ratio": ratio,
        "resolution": resolution,
        "typical_seconds": model.typical_seconds,
    }


# --- the public video object ----------------------------------------------------


def _queued(job: Mapping[str, Any]) -> bool:
    """Not accepted by Jimeng yet, or waiting in its queue."""
    stage = (job.get("progress") or {}).get("stage")
    return not job.get("accepted_at") or stage == "queued"


def _status(job: Mapping[str, Any]) -> str:
    """OpenAI's four statuses (a cancelled job is gone: failed, if ever seen)."""
    status = job["status"]
    if status == "in_progress":
        return "queued" if _queued(job) else "in_progress"
    return status if status in ("queued", "completed") else "failed"


def _progress(job: Mapping[str, Any], now: float) -> int:
    """An approximate percentage: 100 when done, 0 while queued, otherwise the
    share of the model's typical generation time that has passed (at most 99)."""
    if job["status"] == "completed":
        return 100
    accepted = job.get("accepted_at")
    if job["status"] != "in_progress" or _queued(job):
        return 0
    typical = float(job["spec"].get("typical_seconds") or 120)
    return max(1, min(99, int(100 * (now - accepted) / typical)))


def video_object(job: Mapping[str, Any], ttl: float, now: float | None = None) -> dict:
    """OpenAI's video object (openai-python ``Video``) of a video job, plus our
    ``ratio`` and ``resolution``; the file is kept for *ttl* after the end."""
    spec = job["spec"]
    now = time.time() if now is None else now
    completed = job.get("completed_at")
    error = job.get("error")
    status = _status(job)
    return {
        "id": job["id"],
        "object": "video",
        "model": spec["model"],
        "status": status,
        "progress": _progress(job, now),
        "prompt": spec.get("prompt"),
        "seconds": spec["seconds"],
        "size": spec["size"],
        "created_at": int(job["created_at"]),
        "completed_at": int(completed) if completed and status == "completed" else None,
        "expires_at": int(completed + ttl)
        if completed and status == "completed"
        else None,
        "error": (
            {
                "code": error.get("code") or error.get("type") or "generation_failed",
                "message": error.get("message") or "The generation failed.",
                "param": error.get("param"),
                "type": error.get("type"),
            }
            if error and status == "failed"
            else None
        ),
        "remixed_from_video_id": None,
        "ratio": spec.get("ratio"),
        "resolution": spec.get("resolution"),
    }


def describe_video(model: VideoModel) -> dict[str, Any]:
    """The ``/v1/models`` entry of a video model: OpenAI's four fields and what
    it makes (``kind: "video"``, which the playground reads)."""
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": "jimeng",
        "kind": "video",
        "video": True,
        "seconds": list(model.seconds),
        "default_seconds": model.default_seconds,
        "resolutions": list(model.resolutions),
        "default_resolution": model.default_resolution,
        "ratios": list(RATIOS),
        "frames": 2,
        "needs_browser_tokens": model.needs_browser_tokens,
        "listed_by_site": None,
    }
