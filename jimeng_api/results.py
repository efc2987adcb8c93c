"""What a finished job returns: exactly the body its synchronous endpoint sends.

Built once, by the worker that finishes the job, and kept with the job: a
``b64_json`` result holds the image bytes fetched then, so an image that was
paid for survives the expiry of Jimeng's signed URLs.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from .errors import APIError
from .fetchlimits import sniff_image
from .references import off_loop

RENDER_ATTEMPTS = 3  # the images are paid for: their download is retried
RETRIED = ("fetch_failed",)  # a download cut by the network (not a slow CDN)
#: download failures after which b64_json images are delivered as URLs (a
#: refused host is not one: its URL is not handed out)
AS_URLS = (*RETRIED, "fetch_timeout", "not_an_image", "fetch_too_large")

#: (urls, the account's token or None) -> bodies; the token picks its proxy
FetchAll = Callable[[list[str], str | None], list[bytes]]


def markdown_image(index: int, url: str) -> str:
    return f"![image_{index}]({url})\n"


def partial_note(partial: str) -> str:
    """The line that ends a chat answer with fewer images than asked for (the
    same in a stream and in a plain completion)."""
    return f"\n({partial} images: Jimeng delivered no more.)\n"


def markdown_images(urls: list[str]) -> str:
    return "".join(markdown_image(i, url) for i, url in enumerate(urls))


def markdown_video(urls: list[str]) -> str:
    """A chat answer with the video: a Markdown link (chat clients render it)."""
    return "".join(f"[video_{i}]({url})\n" for i, url in enumerate(urls))


def video_result(spec: dict[str, Any], urls: list[str], created: int) -> dict:
    """The body of the forks' ``/v1/videos/generations``."""
    data = [{"url": url, "revised_prompt": spec.get("prompt")} for url in urls]
    return {"created": created, "data": data}


def usage(prompt: str, content: str) -> dict[str, int]:
    """Estimate tokens (about 4 characters each); Jimeng bills in credits."""
    prompt_tokens = math.ceil(len(prompt) / 4)
    completion_tokens = math.ceil(len(content) / 4)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(spec: dict[str, Any], content: str, created: int) -> dict[str, Any]:
    """The ``chat.completion`` body of a chat job."""
    message = {"role": "assistant", "content": content}
    return {
        "id": spec["completion_id"],
        "object": "chat.completion",
        "created": created,
        "model": spec["raw_model"],
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": usage(spec["prompt"], content),
    }


class Renderer:
    """Turns a finished job's image URLs into its endpoint's response body."""

    def __init__(self, fetch_all: FetchAll) -> None:
        self.fetch_all = fetch_all

    def deliver(
        self, job: dict[str, Any], urls: list[str], token: str | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """The body, and a notice when it is not what was asked for: the
        ``b64_json`` downloads are retried on network failures, and if they
        still fail the images (paid for) are delivered as URLs rather than lost.
        Raises what cannot be delivered (e.g. a refused image host)."""
        for attempt in range(RENDER_ATTEMPTS):
            try:
                return self.render(job, urls, token), None
            except APIError as exc:
                if exc.code in RETRIED and attempt + 1 < RENDER_ATTEMPTS:
                    time.sleep(2**attempt)
                    continue
                if job["spec"].get("response_format") != "b64_json":
                    raise
                if exc.code not in AS_URLS:
                    raise
                as_urls = {**job, "spec": {**job["spec"], "response_format": "url"}}
                notice = f"{exc.message} The images are delivered as URLs."
                return self.render(as_urls, urls, token), notice
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def render(
        self, job: dict[str, Any], urls: list[str], token: str | None = None
    ) -> dict[str, Any]:
        spec, created = job["spec"], int(job["created_at"])
        if job["kind"] == "chat":
            text = markdown_video(urls) if spec.get("video") else markdown_images(urls)
            if job.get("partial") and not spec.get("video"):
                text += partial_note(job["partial"])
            return completion(spec, text, created)
        if job["kind"] == "video":
            return video_result(spec, urls, created)
        formats: set[str] = set()
        if spec.get("response_format") == "b64_json":
            data = []
            raws = self.fetch_all(urls, token)
            for index, raw in enumerate(raws):
                raws[index] = b""  # one image at a time beside the body
                image, fmt = encode_as(
                    raw, spec.get("output_format"), spec.get("output_compression")
                )
                formats.add(fmt)
                data.append({"b64_json": base64.b64encode(image).decode()})
        else:
            data = [{"url": url} for url in urls]
        return {"created": created, "data": data, **image_fields(spec, formats)}


def image_fields(
    spec: dict[str, Any], formats: set[str] | None = None
) -> dict[str, Any]:
    """OpenAI's ``size``/``quality``/``output_format``/``background`` fields of an
    images response (``output_format`` only when the bytes are ours to tell),
    and for ``/v1/images/compositions`` the fields of the iptag fork."""
    fields: dict[str, Any] = {}
    if spec.get("size"):
        fields["size"] = spec["size"]
    if spec.get("quality"):
        fields["quality"] = spec["quality"]
    if formats and len(formats) == 1:
        fields["output_format"] = next(iter(formats))
    if spec.get("size"):
        fields["background"] = "opaque"  # Jimeng renders no transparency
    if spec.get("composition"):
        fields["input_images"] = len(spec.get("references") or [])
        fields["composition_type"] = "multi_image_synthesis"
    return fields


# --- output formats ---------------------------------------------------------------

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def normalise_format(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.lower()
    return "jpeg" if name == "jpg" else name


def encode_as(
    data: bytes, output_format: str | None, compression: int | None = None
) -> tuple[bytes, str]:
    """Return *data* in *output_format* (png, jpeg, webp; None: as it is) and
    the format it is in. Converted off the event loop; an image that cannot be
    converted is passed on unchanged."""
    have = sniff_image(data) or "png"
    want = normalise_format(output_format)
    if want is None or want == have or want not in PIL_FORMATS:
        return data, have
    try:
        return off_loop(_convert, data, want, compression), want
    except (OSError, ValueError, Image.DecompressionBombError):
        return data, have


def _convert(data: bytes, want: str, compression: int | None) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if want == "jpeg":
            image = _flatten(image)
        elif image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        out = io.BytesIO()
        options: dict[str, Any] = {}
        if want in ("jpeg", "webp"):
            options["quality"] = 100 - compression if compression else 90
        image.save(out, PIL_FORMATS[want], **options)
        return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on white (JPEG has no alpha)."""
    if image.mode in ("RGBA", "LA", "PA", "P"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def preview(data: bytes, output_format: str | None, side: int = 256) -> bytes:
    """A small version of an image (longer side *side*) for a stream's
    ``partial_image`` event, in *output_format*."""

    def shrink() -> bytes:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            want = normalise_format(output_format) or sniff_image(data) or "png"
            want = want if want in PIL_FORMATS else "png"
            small = _flatten(image) if want == "jpeg" else image.convert("RGBA")
            small.thumbnail((side, side), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            small.save(out, PIL_FORMATS[want])
            return out.getvalue()

    try:
        return off_loop(shrink)
    except (OSError, ValueError, Image.DecompressionBombError):
        return data
