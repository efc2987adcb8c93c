"""Signed image URLs (§3.4: ``x-expires``/``x-signature``) and the PNGs behind them."""

from __future__ import annotations

import base64
import hashlib
import hmac

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from .png import render_image
from .settings import SimSettings
from .state import SimState
from .timeline import Task

MIN_SIDE = 16


def served_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Scale (width, height) so the long side is *long_side* (ratio kept)."""
    width, height = max(width, 1), max(height, 1)
    scale = long_side / max(width, height)
    return max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))


class ImageRoutes:
    """Mixin of :class:`SimulatorApp` for ``/img/<history_id>/<i>[-cover].png``."""

    state: SimState
    settings: SimSettings
    url_secret: bytes

    def url_signature(self, path: str, expires: int) -> str:
        mac = hmac.new(self.url_secret, f"{path}|{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:18]).decode("ascii")

    def image_url(self, request: Request, hid: str, name: str, now: float) -> str:
        base = (self.settings.public_base_url or request.host_url).rstrip("/")
        path = f"/img/{hid}/{name}"
        expires = int(now + self.settings.image_url_ttl)
        sig = self.url_signature(path, expires)
        return f"{base}{path}?x-expires={expires}&x-signature={sig}&format=.png"

    def image_sizes(self, task: Task) -> tuple[tuple[int, int], tuple[int, int]]:
        """(image, cover) pixel sizes of a task's served PNGs."""
        side = self.settings.image_size
        image = served_size(task.width, task.height, side)
        cover = served_size(task.width, task.height, max(MIN_SIDE, side // 2))
        return image, cover

    def image(self, request: Request) -> Response:
        parts = request.path.split("/")
        if len(parts) != 4 or not parts[3].endswith(".png"):
            raise NotFound()
        expires = request.args.get("x-expires", "")
        sig = request.args.get("x-signature", "")
        if not expires.isdigit() or not hmac.compare_digest(
            self.url_signature(request.path, int(expires)), sig
        ):
            return Response("Forbidden: bad signature", 403, content_type="text/plain")
        if int(expires) < self.state.clock.now():
            return Response("Forbidden: URL expired", 403, content_type="text/plain")
        hid, name = parts[2], parts[3][:-4]
        cover = name.endswith("-cover")
        index_text = name[: -len("-cover")] if cover else name
        index = int(index_text) if index_text.isdigit() else 0
        task = self.state.find_task(hid, False)
        if task is None:  # reset or evicted: still a valid signed URL
            side = self.settings.image_size // (2 if cover else 1)
            size, prompt, label = (max(MIN_SIDE, side),) * 2, "", f"#{index + 1}"
        else:
            size = self.image_sizes(task)[1 if cover else 0]
            prompt, label = task.prompt, f"#{index + 1}/{task.gen_count}"
        png = render_image(f"{hid}/{name}", size[0], size[1], label, prompt)
        return Response(png, 200, content_type="image/png")
