"""The playground page (GET /) in headless Debian Chromium, against the real stack.

gunicorn + gevent serves the page and the API; the API talks to the simulator
subprocess. Playwright drives ``/usr/bin/chromium`` (never a downloaded browser).
The module is skipped when Chromium or the ``playwright`` package is missing.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ROOT, Server, gunicorn_server

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

from jimeng_api.simulator import (  # noqa: E402
    start_simulator_process,
    stop_simulator_process,
)

pytestmark = pytest.mark.server

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
STATIC = ROOT / "jimeng_api" / "static"
SESSION = "playground-session-1"
TASK_SECONDS = 2.0  # simulated generation time: long enough to see images arrive
TIMEOUT_MS = 30_000

ALL_IMAGES_LOADED = """
    () => {
      const images = [...document.querySelectorAll('#results img.result-image')];
      return images.length > 0 && images.every((i) => i.complete && i.naturalWidth > 0);
    }
"""


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    proc, base_url = start_simulator_process(
        ["--task-seconds", str(TASK_SECONDS), "--task-jitter", "0"]
    )
    try:
        yield base_url
    finally:
        stop_simulator_process(proc)


@pytest.fixture(scope="module")
def api(simulator: str) -> Iterator[Server]:
    env = {
        "JIMENG_BASE_URL": simulator,
        "IMAGE_FETCH_ALLOWED_HOSTS": "127.0.0.1",
        "POLL_FIRST_DELAY": "0.2",
        "POLL_INTERVAL": "0.2",
        "SSE_KEEPALIVE_INTERVAL": "0.5",
    }
    with gunicorn_server(env=env) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh context (empty localStorage) whose page must not throw JS errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    """The package's static files from a plain http.server on another port."""
    handler = functools.partial(_QuietHandler, directory=str(STATIC.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


# ----------------------------------------------------------------------- helpers


def open_playground(page, url: str, credentials: str = SESSION, api_base: str = ""):
    page.goto(url)
    assert page.locator("#results").count() == 1, f"{url} is not the playground page"
    page.wait_for_selector("html[data-ready='true']")
    if api_base:
        page.fill("#api-base", api_base)
        page.dispatch_event("#api-base", "change")
    page.fill("#credentials", credentials)
    return page


def fill_form(page, prompt: str = "一只柴犬 a shiba inu in the snow") -> None:
    page.select_option("#ratio", "16:9")
    page.select_option("#resolution", "2k")
    page.fill("#n", "4")
    page.fill("#negative-prompt", "blurry")
    page.fill("#prompt", prompt)


def wait_for_outcome(page) -> str:
    """Wait until the status leaves 'busy'; return 'done' or 'error'."""
    page.wait_for_function(
        "() => ['done', 'error'].includes(document.querySelector('#status')"
        ".dataset.state)"
    )
    return page.get_attribute("#status", "data-state")


def assert_done(page) -> None:
    state = wait_for_outcome(page)
    error = page.text_content("#error") if page.is_visible("#error") else ""
    assert state == "done", f"status {page.text_content('#status')!r}, error {error!r}"
    assert not page.is_visible("#error")


def image_count(page) -> int:
    return page.locator("#results img.result-image").count()


def track_authorization(page) -> list[tuple[str, str | None]]:
    """Record (url, Authorization header) of every request the page makes."""
    seen: list[tuple[str, str | None]] = []
    page.on("request", lambda r: seen.append((r.url, r.headers.get("authorization"))))
    return seen


# ----------------------------------------------------------------------- tests


def test_generate_renders_four_images(api: Server, page):
    requests_seen = track_authorization(page)
    open_playground(page, api.base_url + "/")
    assert page.title().startswith("即梦 Playground")
    page.wait_for_function("() => document.querySelector('#model').options.length")
    fill_form(page)

    page.click("#generate")

    assert_done(page)
    assert image_count(page) == 4
    page.wait_for_function(ALL_IMAGES_LOADED)
    widths = page.eval_on_selector_all(
        "#results img.result-image", "els => els.map((e) => e.naturalWidth)"
    )
    assert len(widths) == 4 and all(w > 0 for w in widths)
    assert "4" in page.text_content("#status")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)

    # the credentials stay in localStorage and go only to the API base
    stored = page.evaluate(
        "() => localStorage.getItem('jimeng-playground.credentials')"
    )
    assert stored == SESSION
    for url, authorization in requests_seen:
        if authorization is not None:
            assert url.startswith(api.base_url + "/"), url
            assert authorization == f"Bearer {SESSION}"
    assert any(u.endswith("/v1/images/generations") for u, _ in requests_seen)


def test_stream_shows_each_image_as_it_arrives(api: Server, page):
    open_playground(page, api.base_url + "/")
    fill_form(page, "a lighthouse at dusk")
    # note when each image element appears, and when the status says done
    # note when image elements appear, what the status says, and when it is done
    page.evaluate(
        """() => {
          window.__arrivals = [];
          window.__statuses = [];
          new MutationObserver(() => {
            const n = document.querySelectorAll('#results img.result-image').length;
            if (n > window.__arrivals.length) window.__arrivals.push(performance.now());
            const status = document.querySelector('#status');
            window.__statuses.push(status.textContent);
            if (status.dataset.state === 'done' && !window.__doneAt)
              window.__doneAt = performance.now();
          }).observe(document.body, {subtree: true, childList: true,
                                     attributes: true, characterData: true});
        }"""
    )

    page.click("#stream")

    assert_done(page)
    assert image_count(page) == 4
    page.wait_for_function(ALL_IMAGES_LOADED)
    arrivals, done_at, progress_seen = page.evaluate(
        "() => [window.__arrivals, window.__doneAt, window.__statuses]"
    )
    assert len(arrivals) >= 2, "the images should arrive one after another"
    assert arrivals[0] < arrivals[-1] - 100  # ms: not all in one final batch
    assert arrivals[0] < done_at
    assert any("生成中" in text for text in progress_seen), progress_seen
    assert re.search(r"Done.*4", page.text_content("#status"))


def test_cancel_stops_a_stream_and_keeps_what_arrived(api: Server, page):
    open_playground(page, api.base_url + "/")
    fill_form(page, "a slow river")
    page.click("#stream")
    page.wait_for_selector("#results img.result-image")

    page.click("#cancel")

    page.wait_for_selector("#status[data-state='cancelled']")
    assert not page.is_visible("#error")
    assert 1 <= image_count(page) <= 4
    assert page.is_enabled("#generate") and page.is_enabled("#stream")


@pytest.mark.parametrize("button", ["#generate", "#stream"])
def test_invalid_session_shows_a_clear_error(api: Server, page, button: str):
    open_playground(page, api.base_url + "/", credentials="invalid-xyz")
    fill_form(page)

    page.click(button)

    assert wait_for_outcome(page) == "error"
    assert page.is_visible("#error")
    text = page.text_content("#error")
    assert "401" in text
    assert "session" in text.lower()
    assert image_count(page) == 0


def test_missing_prompt_is_reported_without_a_request(api: Server, page):
    open_playground(page, api.base_url + "/")
    posts: list[str] = []
    page.on("request", lambda r: r.method == "POST" and posts.append(r.url))

    page.click("#generate")

    assert page.is_visible("#error")
    assert "prompt" in page.text_content("#error").lower()
    assert posts == []


def test_check_credits_shows_balances_and_per_session_errors(api: Server, page):
    open_playground(page, api.base_url + "/", credentials=f"{SESSION},invalid-abc")

    page.click("#check-credits")

    page.wait_for_selector("#credits li, #error:not([hidden])")
    assert not page.is_visible("#error"), page.text_content("#error")
    assert page.locator("#credits li").count() == 2
    ok = page.text_content("#credits li.ok")
    assert re.search(r"\d+ 积分 credits", ok), ok
    bad = page.text_content("#credits li.bad")
    assert "session" in bad.lower(), bad
    text = page.text_content("#credits")
    assert SESSION not in text and "invalid-abc" not in text  # masked by the server


@pytest.mark.parametrize("button", ["#generate", "#stream"])
def test_page_from_another_origin_uses_the_api_via_cors(
    api: Server, other_origin: str, page, button: str
):
    requests_seen = track_authorization(page)
    open_playground(
        page, other_origin + "/static/playground/index.html", api_base=api.base_url
    )
    fill_form(page, "cross-origin cat")

    page.click(button)

    assert_done(page)
    assert image_count(page) == 4
    page.wait_for_function(ALL_IMAGES_LOADED)
    sent = [url for url, auth in requests_seen if auth]
    assert sent and all(url.startswith(api.base_url + "/") for url in sent)


def test_layout_fits_a_phone_screen(api: Server, browser):
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True
    )
    try:
        page = context.new_page()
        open_playground(page, api.base_url + "/")
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        for selector in ("#prompt", "#generate", "#stream", "#check-credits"):
            assert page.is_visible(selector)
    finally:
        context.close()


def test_sse_parser_handles_split_chunks_comments_and_utf8(api: Server, page):
    """The page's own SSE reader, fed a stream cut at awkward byte offsets."""
    open_playground(page, api.base_url + "/")
    result = page.evaluate(
        """async () => {
          const { readEventStream, createSSEParser } =
            await import('/static/playground/sse.js');
          const text = ': keep-alive\\r\\n\\r\\n' +
            'data: {"a":"🎨 图像生成中"}\\r\\n\\r\\n' +
            'event: note\\ndata: line1\\ndata: line2\\n\\n' +
            ': keep-alive\\n\\n' +
            'data:{"b":2}\\r\\rdata: [DONE]\\n\\n' +
            'data: after-done\\n\\n';
          const bytes = new TextEncoder().encode(text);
          const runs = [];
          for (const size of [1, 2, 3, 5, 7, bytes.length]) {
            const events = [];
            const comments = [];
            const body = new ReadableStream({
              start(controller) {
                for (let i = 0; i < bytes.length; i += size)
                  controller.enqueue(bytes.slice(i, i + size));
                controller.close();
              },
            });
            await readEventStream(new Response(body), (e) => {
              events.push(e);
              return e.data === '[DONE]';
            }, (c) => comments.push(c));
            runs.push({ events, comments });
          }
          // without a final blank line, the last event still counts
          const tail = [];
          const parser = createSSEParser((e) => { tail.push(e.data); });
          parser.push('data: x\\n\\ndata: y');
          parser.end();
          return { runs, tail };
        }"""
    )
    expected = [
        {"event": "message", "data": '{"a":"🎨 图像生成中"}'},
        {"event": "note", "data": "line1\nline2"},
        {"event": "message", "data": '{"b":2}'},
        {"event": "message", "data": "[DONE]"},
    ]
    for run in result["runs"]:
        assert run["events"] == expected
        assert run["comments"] == ["keep-alive", "keep-alive"]
    assert result["tail"] == ["x", "y"]
