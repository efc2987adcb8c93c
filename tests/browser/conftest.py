"""Fixtures of the browser tests: one simulator and one real gunicorn + gevent
server for the whole run, headless Debian Chromium (``/usr/bin/chromium``, never
a downloaded browser) driven by playwright, and a second origin.

A test module that needs Chromium skips itself when it or the ``playwright``
package is missing (see ``helpers.require_browser``).
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    STATIC,
    TASK_SECONDS,
    TIMEOUT_MS,
    VIDEO_TASK_SECONDS,
)
from tests.servers import Server, api_env, gunicorn_server


@pytest.fixture(scope="session")
def simulator() -> Iterator[str]:
    from simulator import start_simulator_process, stop_simulator_process

    args = {
        "--task-seconds": TASK_SECONDS,
        "--task-jitter": 0,
        "--video-task-seconds": VIDEO_TASK_SECONDS,
        "--initial-credits": 100_000,  # one session serves the whole run
    }
    flags = ["--video-gift-spendable"]  # the demo sessions have gift credits only
    proc, base_url = start_simulator_process(
        [*(str(x) for pair in args.items() for x in pair), *flags]
    )
    try:
        yield base_url
    finally:
        stop_simulator_process(proc)


@pytest.fixture(scope="session")
def api(simulator: str, tmp_path_factory) -> Iterator[Server]:
    # the suite's fast-polling settings (tests/servers.py), for this simulator
    env = api_env(
        SimpleNamespace(base_url=simulator),
        IMAGE_FETCH_ALLOWED_HOSTS="127.0.0.1",
        FETCH_ALLOW_PRIVATE_HOSTS="127.0.0.1",  # reference URLs of the simulator
        JIMENG_IMAGEX_URL=simulator,  # reference uploads: the simulator's ImageX
        DATA_DIR=str(tmp_path_factory.mktemp("browser-data")),
        MAX_CONTENT_LENGTH=str(16 * 1024 * 1024),  # room for reference images
        # every browser test shares this server, its address and its session
        RATE_LIMIT_PER_IP="0",
        RATE_LIMIT_PER_ACCOUNT="0",
    )
    with gunicorn_server(env=env) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(browser) -> Iterator[Callable[..., object]]:
    """Open pages in fresh contexts (empty storage) that must not throw JS errors."""
    contexts, errors = [], []

    def open_page(locale="zh-CN", viewport=DESKTOP, **options):
        context = browser.new_context(locale=locale, viewport=viewport, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(open_page):
    return open_page()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, no access log, JavaScript modules with their MIME type."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def serve_directory() -> Iterator[Callable[[Path], str]]:
    """``serve_directory(path)``: a plain http.server for *path* on its own
    port (another origin than the API); returns its base URL."""
    servers = []

    def serve(directory: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(directory))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    try:
        yield serve
    finally:
        for httpd in servers:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture(scope="session")
def other_origin(serve_directory) -> str:
    """The package's static files from a plain http.server on another port."""
    return serve_directory(STATIC.parent)
