"""Image sizes: the request's size fields to pixels, the ``image_ratio`` code
and the resolution tier, from the size table (``JIMENG_SIZE_TABLE`` over it).

Pure logic (no Flask, no I/O). Protocol doc §5.2 (``image_ratio`` enum,
resolution tables); fixes quirk Q8 (sizes were neither validated nor mapped to
a ratio).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from config import ConfigError, parse_size_table

from .catalog import Model, shown
from .errors import InvalidRequestError


@dataclass(frozen=True)
class ImageSize:
    """What the draft needs: pixels, upstream ratio code and resolution tier."""

    width: int
    height: int
    image_ratio: int
    resolution_type: str
    ratio: str


RESOLUTIONS = ("1k", "2k", "4k")
# the [IP]/[PY] enum: 1:1 -> 1, 3:4 -> 2, ... 21:9 -> 8 (4k adds 100)
RATIOS: dict[str, int] = {
    ratio: code
    for code, ratio in enumerate("1:1 3:4 16:9 4:3 9:16 2:3 3:2 21:9".split(), 1)
}
_SIZES: dict[str, tuple[tuple[int, int], ...]] = {  # ratio: 1k, 2k, 4k (w, h)
    "1:1": ((1024, 1024), (2048, 2048), (4096, 4096)),
    "3:4": ((768, 1024), (1728, 2304), (3456, 4608)),  # 1k fixed (fork bug ‡)
    "16:9": ((1024, 576), (2560, 1440), (5120, 2880)),
    "4:3": ((1024, 768), (2304, 1728), (4608, 3456)),  # 1k fixed (fork bug ‡)
    "9:16": ((576, 1024), (1440, 2560), (2880, 5120)),
    "2:3": ((682, 1024), (1664, 2496), (3328, 4992)),
    "3:2": ((1024, 682), (2496, 1664), (4992, 3328)),
    "21:9": ((1195, 512), (3024, 1296), (6048, 2592)),
}
SIZE_TABLE: dict[tuple[str, str], tuple[int, int]] = {
    (ratio, res): dims
    for ratio, row in _SIZES.items()
    for res, dims in zip(RESOLUTIONS, row, strict=True)
}
SizeTable = Mapping[tuple[str, str], tuple[int, int]]


def size_table(entries: tuple[str, ...] | list[str] = ()) -> SizeTable:
    """SIZE_TABLE with the ``JIMENG_SIZE_TABLE`` entries over it."""
    return _merged_sizes(tuple(entries))


@lru_cache(maxsize=8)
def _merged_sizes(entries: tuple[str, ...]) -> SizeTable:
    overrides = parse_size_table(entries)
    unknown = sorted({ratio for ratio, _ in overrides if ratio not in RATIOS})
    if unknown:
        raise ConfigError(
            f"JIMENG_SIZE_TABLE: unknown ratio {', '.join(unknown)} "
            f"(Jimeng's are {', '.join(RATIOS)})"
        )
    return {**SIZE_TABLE, **overrides} if overrides else SIZE_TABLE


MIN_SIDE = 256
MAX_SIDE = 8192
MAX_PIXELS = 6144 * 6144
TIER_MAX_SIDE = (("1k", 1536), ("2k", 3072))  # longer side up to -> tier; else 4k

_WXH = re.compile(r"(\d{1,9})[x*×](\d{1,9})", re.ASCII)
_SUFFIX_WXH = re.compile(r"(\d{1,9})[^\d:](\d{1,9})", re.ASCII)
_SUFFIX_RATIO = re.compile(r"(\d{1,4}:\d{1,4})(?::(\w+))?", re.ASCII)


def _bad(message: str, param: str) -> InvalidRequestError:
    """Build the 400 for *param*."""
    return InvalidRequestError(message, param=param)


def _clean(value: object, param: str) -> str | None:
    """Return a string option lower-cased without whitespace; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"'{param}' must be a string.", param)
    return "".join(value.split()).lower()


def _choose(value: object, param: str, choices: tuple[str, ...], default: str) -> str:
    """Return *value* if it is one of *choices* (default when None); else 400."""
    text = _clean(value, param)
    if text is None:
        return default
    if text not in choices:
        raise _bad(
            f"Invalid {param} '{shown(value)}'. Valid values: {', '.join(choices)}.",
            param,
        )
    return text


def _side(value: object, param: str) -> int:
    """Validate one side length in pixels."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{param}' must be an integer number of pixels.", param)
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise _bad(
            f"'{param}' must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {value}.",
            param,
        )
    return value


def _require_tier(model: Model, resolution: str, param: str) -> None:
    """Refuse 4k for the models that only render up to 2k."""
    if resolution == "4k" and not model.modern:
        raise _bad(
            f"4k is not available for {model.id}; use a 4.x or 5.x model "
            f"or a smaller size (longer side at most {TIER_MAX_SIDE[-1][1]}).",
            param,
        )


def _image_size(width: int, height: int, ratio: str, resolution: str) -> ImageSize:
    """Assemble the ImageSize, adding 100 to the ratio code at 4k."""
    code = RATIOS[ratio] + (100 if resolution == "4k" else 0)
    return ImageSize(width, height, code, resolution, ratio)


def _from_table(
    model: Model, ratio: object, resolution: object, res_param: str, table: SizeTable
) -> ImageSize:
    """Look a (ratio, resolution) pair up in the size table."""
    ratio = _choose(ratio, "ratio", tuple(RATIOS), "1:1")
    res = _choose(resolution, res_param, RESOLUTIONS, model.default_resolution)
    _require_tier(model, res, res_param)
    return _image_size(*table[ratio, res], ratio, res)


def nearest_ratio(width: int, height: int) -> str:
    """Return the enum ratio closest to width/height on a log scale (also the
    ratio a reference image suggests for ``size: auto``)."""
    target = math.log(max(width, 1) / max(height, 1))

    def distance(ratio: str) -> float:
        a, b = ratio.split(":")
        return abs(target - math.log(int(a) / int(b)))

    return min(RATIOS, key=distance)


def _from_dims(model: Model, width: int, height: int, param: str) -> ImageSize:
    """Keep explicit pixels (rounded up to even); derive ratio and tier from them."""
    width, height = width + width % 2, height + height % 2
    if width * height > MAX_PIXELS:
        raise _bad(
            f"{width}x{height} is too large: at most {MAX_PIXELS} pixels.", param
        )
    longer = max(width, height)
    res = next((tier for tier, top in TIER_MAX_SIDE if longer <= top), "4k")
    _require_tier(model, res, param)
    return _image_size(width, height, nearest_ratio(width, height), res)


def _parse_wxh(size: str, raw: object) -> tuple[int, int]:
    """Split an OpenAI-style 'WIDTHxHEIGHT' size."""
    match = _WXH.fullmatch(size)
    if match is None:
        raise _bad(
            f"Invalid size '{shown(raw)}': use 'WIDTHxHEIGHT' (e.g. '1024x1024'), "
            "'1K', '2K', '4K' or 'auto'.",
            "size",
        )
    return _side(int(match[1]), "size"), _side(int(match[2]), "size")


def _pair(width: object, height: object) -> tuple[int, int]:
    """Validate explicit width and height, which must come together."""
    if width is None or height is None:
        missing = "width" if width is None else "height"
        raise _bad("'width' and 'height' must be given together.", missing)
    return _side(width, "width"), _side(height, "height")


def resolve_size(
    model: Model,
    *,
    size: object = None,
    width: object = None,
    height: object = None,
    ratio: object = None,
    resolution: object = None,
    table: SizeTable = SIZE_TABLE,
) -> ImageSize:
    """Turn the request's size fields into an ImageSize, or raise a 400.

    * Nothing given, or ``size="auto"``: table[("1:1", default resolution)]
      (*table*: ``size_table()``, SIZE_TABLE with the configured entries).
    * ``ratio`` ("16:9"...) and/or ``resolution`` ("1k"/"2k"/"4k", any case):
      table lookup; ratio defaults to 1:1, resolution to model.default_resolution.
    * ``size="1K"|"2K"|"4K"``: a resolution tier (combinable with ``ratio`` only).
    * ``size="WxH"`` (separator x, *, ×) or ``width`` + ``height``: each side
      MIN_SIDE..MAX_SIDE, rounded up to even, at most MAX_PIXELS; kept as given.
      ``image_ratio`` = nearest enum ratio by log(w/h), resolution by the longer
      side (<= 1536 1k, <= 3072 2k, else 4k). Not combinable with ratio/resolution
      or with each other; width without height is an error.
    * 4k adds 100 to ``image_ratio``; legacy (3.x and older) models refuse 4k.
    """
    raw_size, size = size, _clean(size, "size")
    if size == "auto":
        size = None
    if size in RESOLUTIONS:
        if resolution is not None:
            raise _bad(
                "Give the resolution in 'size' or 'resolution', not both.", "size"
            )
        return _from_table(model, ratio, size, "size", table)
    has_dims = width is not None or height is not None
    if size is None and not has_dims:
        return _from_table(model, ratio, resolution, "resolution", table)
    if ratio is not None or resolution is not None or (size is not None and has_dims):
        raise _bad(
            "Ambiguous size: give either 'size', 'width'+'height', or "
            "'ratio'/'resolution'.",
            "size",
        )
    if size is not None:
        return _from_dims(model, *_parse_wxh(size, raw_size), "size")
    return _from_dims(model, *_pair(width, height), "width")


def parse_model_suffix(value: str) -> tuple[str, str | None]:
    """Split a chat model 'name:suffix' at the first ':' (empty suffix -> None)."""
    name, _, suffix = value.partition(":")
    return name.strip(), suffix.strip() or None


def size_from_suffix(
    model: Model, suffix: str | None, table: SizeTable = SIZE_TABLE
) -> ImageSize:
    """Resolve a chat model suffix: 'WxH', 'a:b' ratio (+ ':2k'), or a tier."""
    if suffix is None:
        return resolve_size(model, table=table)
    text = "".join(suffix.split()).lower()
    try:
        if match := _SUFFIX_WXH.fullmatch(text):
            return resolve_size(model, width=int(match[1]), height=int(match[2]))
        if text in RESOLUTIONS:
            return resolve_size(model, resolution=text, table=table)
        if match := _SUFFIX_RATIO.fullmatch(text):
            return resolve_size(model, ratio=match[1], resolution=match[2], table=table)
    except InvalidRequestError as exc:
        raise _bad(
            f"Invalid size suffix ':{shown(suffix)}': {exc.message}", "model"
        ) from None
    raise _bad(
        f"Invalid size suffix ':{shown(suffix)}' in 'model': use e.g. "
        f"'{model.id}:1280x720', '{model.id}:16:9', '{model.id}:16:9:2k' "
        f"or '{model.id}:2k'.",
        "model",
    )
