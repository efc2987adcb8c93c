"""What the browser tests share: constants, driving the playground as a user
does, recording what the page sends, screenshots.

Screenshots go to tests/artifacts/; with ``JIMENG_UPDATE_SCREENSHOTS=1`` they
also replace the ones in docs/ that the READMEs show.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.servers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS = ROOT / "docs"
STATIC = ROOT / "jimeng_api" / "static"
SESSION = "playground-session-1"
TASK_SECONDS = 2.0  # simulated generation time: long enough to see images arrive
VIDEO_TASK_SECONDS = 3.0  # simulated video time: long enough to see the progress
TIMEOUT_MS = 30_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PHONE_OPTIONS = {
    "viewport": PHONE,
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")

ALL_IMAGES_LOADED = """
    () => {
      const entry = document.querySelector('#gallery .entry');
      const images = entry ? [...entry.querySelectorAll('img.result-image')] : [];
      return images.length > 0 && images.every((i) => i.complete && i.naturalWidth > 0);
    }
"""


def require_browser():
    """Skip the calling module without Chromium or playwright; return sync_api."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


# ----------------------------------------------------------------------- the page


def open_playground(page, url: str, credentials: str = SESSION, api_base: str = ""):
    page.goto(url)
    assert page.locator("#gallery").count() == 1, f"{url} is not the playground page"
    page.wait_for_selector("html[data-ready='true']")
    if api_base:
        page.fill("#api-base", api_base)
        page.dispatch_event("#api-base", "change")
        page.wait_for_function("() => document.querySelector('#model').options.length")
    if credentials:
        page.fill("#credentials", credentials)
    return page


def choose(page, name: str, value: str) -> None:
    """Click the chip (a label around a radio) for *value*, as a user would."""
    page.click(f"#{name}-options label:has(input[value='{value}'])")
    assert page.is_checked(f"input[name='{name}'][value='{value}']")


def fill_form(page, prompt: str = "一只柴犬 a shiba inu in the snow") -> None:
    page.select_option("#model", "jimeng-4.0")
    choose(page, "ratio", "16:9")
    choose(page, "resolution", "2k")
    choose(page, "n", "4")
    page.fill("#prompt", prompt)


def set_stream(page, on: bool) -> None:
    page.click(".advanced > summary")
    page.set_checked("#stream", on)


def wait_for_outcome(page) -> str:
    """Wait until the status leaves 'busy'; return 'done', 'error' or 'cancelled'."""
    page.wait_for_function(
        "() => ['done', 'error', 'cancelled'].includes("
        "document.querySelector('#status').dataset.state)"
    )
    return page.get_attribute("#status", "data-state")


def assert_done(page) -> None:
    state = wait_for_outcome(page)
    error = page.text_content("#error") if page.is_visible("#error") else ""
    assert state == "done", f"status {page.text_content('#status')!r}, error {error!r}"
    assert not page.is_visible("#error")


def latest(page):
    return page.locator("#gallery .entry").first


def image_count(page) -> int:
    return latest(page).locator("img.result-image").count()


def body_text(page) -> str:
    return page.evaluate("() => document.body.innerText")


# ----------------------------------------------------------------------- requests


def parse_body(content_type: str, data: bytes | None):
    """A request body as the test wants to see it: JSON as data, multipart as
    ``{"fields": {name: value or [values]}, "files": [(name, filename, type, size)]}``,
    anything else as text."""
    if not data:
        return None
    if content_type.startswith("application/json"):
        return json.loads(data)
    if content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parse(
            io.BytesIO(head + data)
        )
        fields: dict[str, object] = {}
        files = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if filename is not None:
                files.append((name, filename, part.get_content_type(), len(payload)))
            elif name in fields:
                previous = fields[name]
                fields[name] = [
                    *(previous if isinstance(previous, list) else [previous]),
                    payload.decode(),
                ]
            else:
                fields[name] = payload.decode()
        return {"fields": fields, "files": files}
    return data.decode(errors="replace")


def posts(page) -> list[tuple[str, object, str | None]]:
    """Record (url, body, Authorization) of every POST the page makes."""
    seen: list[tuple[str, object, str | None]] = []

    def record(request) -> None:
        if request.method == "POST":
            content_type = request.headers.get("content-type", "")
            body = parse_body(content_type, request.post_data_buffer)
            seen.append((request.url, body, request.headers.get("authorization")))

    page.on("request", record)
    return seen


# ----------------------------------------------------------------------- screenshots


def screenshot(page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.wait_for_timeout(400)  # let the entrance animations end
    page.screenshot(path=str(path), full_page=full_page)
    if os.environ.get("JIMENG_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOCS / name)
