"""Reference images: from what a request sends to bytes Jimeng accepts.

A reference is a multipart file, a ``data:`` URI, bare base64, an http(s) URL
(fetched by ``SafeFetcher`` with purpose ``reference``: public addresses only,
one checked connection, a total deadline, a size cap, an image body), or an
object ``{"url" | "image_url" | "b64_json": …, "strength": 0-1}``. Each one is
checked *before* a job exists, so bad input is a 400 (413 when too large) naming
the reference (``param`` ``image``, ``image[2]``, ``messages``…), and nothing is
submitted or charged:

* the bytes must be PNG, JPEG, WebP, GIF (first frame) or AVIF and decode
  completely (a truncated file is refused); SVG is refused;
* at most ``REFERENCE_MAX_BYTES`` per reference, at most ``MAX_INPUT_PIXELS``;
* every image is re-encoded: EXIF orientation applied, metadata dropped, the
  longer side brought down to ``REFERENCE_MAX_SIDE``, JPEG (or PNG when it has
  transparency).

The re-encoded bytes wait in the store (``ref:<id>`` keys, expiring with the job's
deadline) until the submitter uploads them through ImageX with the account that
takes the job, right before its submit: uploads are per account.

Which models take references, and how many, is ``IMAGE_TO_IMAGE``.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import gevent
import gevent.pool
from PIL import Image, ImageOps, UnidentifiedImageError, features

from .catalog import Model
from .errors import APIError, InvalidRequestError, PayloadTooLargeError
from .fetcher import SafeFetcher, in_parallel
from .fetchlimits import gevent_active, sniff_image

T = TypeVar("T")

#: OpenAI's ``quality`` values; DALL·E's ``standard``/``hd`` and the newer
#: ``xhigh``/``max`` are read as ``medium`` and ``high``
QUALITIES = ("auto", "low", "medium", "high", "standard", "hd", "xhigh", "max")
QUALITY_ALIASES = {"standard": "medium", "hd": "high", "xhigh": "high", "max": "high"}
MAX_REFERENCES = 10  # the site's blend takes 1-10 images (protocol doc §5.4)
MAX_INPUT_PIXELS = 8192 * 8192  # larger inputs are refused before decoding
FETCH_CONCURRENCY = 4
#: public model id → most reference images it takes; absent: text to image only.
#: 4.x/5.x blend up to 10 (zhizinan v1.2.6, iptag); 3.x blend one (the forks'
#: blend model was jimeng-3.0); 2.x and older have no image to image.
IMAGE_TO_IMAGE: dict[str, int] = {
    "jimeng-5.0": 10,
    "jimeng-4.7": 10,
    "jimeng-4.6": 10,
    "jimeng-4.5": 10,
    "jimeng-4.1": 10,
    "jimeng-4.0": 10,
    "jimeng-3.1": 1,
    "jimeng-3.0": 1,
}
DECODABLE = {"png", "jpeg", "webp", "gif"} | (
    {"avif"} if features.check("avif") else set()
)
_SCHEME = re.compile(r"(?i)[a-z][a-z0-9+.-]{0,20}:")
_BASE64 = re.compile(r"[A-Za-z0-9+/_=-]+")


# --- which models, how many ------------------------------------------------------


def require_image_to_image(model: Model, count: int, param: str = "image") -> None:
    """Refuse more than ``MAX_REFERENCES`` images, or more than *model* takes."""
    if count > MAX_REFERENCES:
        raise InvalidRequestError(
            f"At most {MAX_REFERENCES} reference images per request (got {count}).",
            param=param,
            code="too_many_images",
        )
    limit = IMAGE_TO_IMAGE.get(model.id, 0)
    if limit == 0:
        able = ", ".join(IMAGE_TO_IMAGE)
        raise InvalidRequestError(
            f"'{model.id}' cannot generate from reference images. Models that can: "
            f"{able}.",
            param="model",
            code="model_not_supported",
        )
    if count > limit:
        wider = ", ".join(m for m, n in IMAGE_TO_IMAGE.items() if n >= count)
        raise InvalidRequestError(
            f"'{model.id}' takes at most {limit} reference image"
            f"{'s' if limit > 1 else ''} (got {count}); {wider} take up to "
            f"{MAX_REFERENCES}.",
            param=param,
            code="too_many_images",
        )


# --- what the request sent ---------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One reference as sent: bytes (a file) or text (URL, data URI, base64)."""

    value: bytes | str
    param: str
    strength: float | None = None


def sources_from_json(value: Any, param: str = "image") -> list[Source]:
    """The references of a JSON field: a string, an object, or a list of them."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    listed = isinstance(value, list)
    sources = []
    for index, item in enumerate(items):
        name = f"{param}[{index}]" if listed else param
        sources.append(_source(item, name))
    return sources


def _source(item: Any, param: str) -> Source:
    if isinstance(item, str):
        return Source(item, param)
    if isinstance(item, dict):
        strength = item.get("strength")
        if strength is not None and (
            isinstance(strength, bool)
            or not isinstance(strength, (int, float))
            or not 0 <= strength <= 1
        ):
            raise InvalidRequestError(
                f"'{param}.strength' must be a number from 0 to 1.",
                param=f"{param}.strength",
            )
        value = item.get("url") or item.get("b64_json") or item.get("image_url")
        if isinstance(value, dict):  # {"image_url": {"url": ...}} (chat's shape)
            value = value.get("url")
        if isinstance(value, str):
            return Source(value, param, None if strength is None else float(strength))
    raise InvalidRequestError(
        f"'{param}' must be an image URL, a data: URI or base64 (or an object with "
        "'url' or 'b64_json' and an optional 'strength').",
        param=param,
    )


# --- from a source to bytes ---------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A reference ready for upload: re-encoded bytes and their size."""

    data: bytes
    mime: str
    width: int
    height: int
    param: str
    strength: float | None


def too_large(param: str, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The reference image '{param}' is larger than {limit} bytes "
        "(REFERENCE_MAX_BYTES).",
        param=param,
        code="image_too_large",
    )


def not_an_image(param: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The reference image '{param}' {why}.", param=param, code="not_an_image"
    )


def raw_bytes(source: Source, fetcher: SafeFetcher, limit: int) -> bytes:
    """The bytes a source stands for; a URL is fetched (purpose ``reference``)."""
    value, param = source.value, source.param
    if isinstance(value, bytes):
        return value
    text = value.strip()
    if not text:
        raise InvalidRequestError(f"'{param}' is empty.", param=param)
    if text[:5].lower() == "data:":
        return _data_uri(text, param, limit)
    if _SCHEME.match(text):  # base64 has no ':': a URL (only http(s) passes)
        fetched = fetcher.fetch(
            text, purpose="reference", max_bytes=limit, param=param, accept=()
        )
        return fetched.content
    return _base64(text, param, limit)


def _data_uri(text: str, param: str, limit: int) -> bytes:
    head, comma, payload = text.partition(",")
    parts = [p.strip().lower() for p in head[5:].split(";")]
    if not comma or "base64" not in parts[1:]:
        raise InvalidRequestError(
            f"'{param}' must be a base64 data: URI (data:image/png;base64,…).",
            param=param,
        )
    media = parts[0]
    if media == "image/svg+xml":
        raise not_an_image(param, "is an SVG; send PNG, JPEG, WebP or GIF")
    if media and not media.startswith("image/"):
        raise not_an_image(param, f"is declared as '{media[:40]}', not an image")
    return _base64(payload, param, limit)


def _base64(text: str, param: str, limit: int) -> bytes:
    compact = "".join(text.split())
    if len(compact) * 3 // 4 > limit + 3:
        raise too_large(param, limit)
    if not compact or not _BASE64.fullmatch(compact):
        raise InvalidRequestError(
            f"'{param}' is neither an http(s) URL nor a data: URI nor base64.",
            param=param,
        )
    padded = compact + "=" * (-len(compact) % 4)
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(
            f"'{param}' is not valid base64.", param=param
        ) from None


def prepare(
    data: bytes, param: str, max_side: int, limit: int
) -> tuple[bytes, str, int, int]:
    """Check and re-encode one image; return (bytes, mime, width, height)."""
    if len(data) > limit:
        raise too_large(param, limit)
    kind = sniff_image(data)
    if kind is None:
        head = data[:512].lstrip().lower()
        if head.startswith(b"<?xml") or b"<svg" in head:
            raise not_an_image(param, "is an SVG; send PNG, JPEG, WebP or GIF")
        raise not_an_image(param, "is not a PNG, JPEG, WebP or GIF image")
    if kind not in DECODABLE:
        raise not_an_image(param, f"is {kind.upper()}; send PNG, JPEG, WebP or GIF")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_INPUT_PIXELS:
                raise not_an_image(
                    param,
                    f"has {width}x{height} pixels; at most {MAX_INPUT_PIXELS} "
                    "are accepted",
                )
            image.load()
    except APIError:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
    ):
        raise not_an_image(
            param, "could not be decoded (truncated or corrupt)"
        ) from None
    return _reencode(image, max_side)


def _reencode(image: Image.Image, max_side: int) -> tuple[bytes, str, int, int]:
    image = ImageOps.exif_transpose(image)
    alpha = _has_alpha(image)
    image = image.convert("RGBA" if alpha else "RGB")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if alpha:
        image.save(out, "PNG", optimize=False, compress_level=6)
        mime = "image/png"
    else:
        image.save(out, "JPEG", quality=92, optimize=True)
        mime = "image/jpeg"
    return out.getvalue(), mime, image.width, image.height


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    ):
        low, _ = image.convert("RGBA").getchannel("A").getextrema()
        return low < 255
    return False


def off_loop(work: Callable[..., T], *args: Any) -> T:
    """Run CPU-bound image work on gevent's thread pool (Pillow releases the
    GIL), so one big image does not stall every request of the worker."""
    if gevent_active():
        return gevent.get_hub().threadpool.apply(work, args)
    return work(*args)


def prepare_all(
    sources: Sequence[Source], fetcher: SafeFetcher, config: Mapping[str, Any]
) -> list[Prepared]:
    """Fetch/decode every source and re-encode it (in order; 400/413 on the first
    bad one)."""
    limit = int(config["REFERENCE_MAX_BYTES"])
    max_side = int(config["REFERENCE_MAX_SIDE"])

    def one(source: Source) -> Prepared:
        data = raw_bytes(source, fetcher, limit)
        encoded, mime, width, height = off_loop(
            prepare, data, source.param, max_side, limit
        )
        return Prepared(encoded, mime, width, height, source.param, source.strength)

    if len(sources) <= 1:
        return [one(s) for s in sources]
    return in_parallel(one, sources, FETCH_CONCURRENCY)
