"""The official openai-node SDK in Chromium, on a page of another origin than
the API (issue 14 point 6).

``tests/browser/sdk/`` is a small npm project that pins the ``openai`` package;
the fixture installs it (``npm ci`` from the lock file) unless the pinned
version is there already. A plain http.server serves the page and the
package's own ES modules, as npm installed them (no bundler), on
``http://localhost:<port>``; the API is the real gunicorn + gevent server on
``http://127.0.0.1:<other port>`` against the simulator. So every call is a
CORS request with the SDK's ``X-Stainless-*`` and ``Idempotency-Key`` headers,
preflighted, as in a user's web page.

Without npm, or when the install fails (no registry), the module is skipped,
unless ``CI`` is set: then it fails and says why. Without Chromium or
playwright it is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.browser.helpers import SESSION, parse_body, require_browser
from tests.servers import Server

require_browser()

pytestmark = pytest.mark.server

SDK_DIR = Path(__file__).resolve().parent / "sdk"
PINNED = json.loads((SDK_DIR / "package.json").read_text())["dependencies"]["openai"]
NPM_TIMEOUT = 120  # seconds; `npm ci` of this one package takes a few
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\((http[^)\s]+)\)")

# the SDK client every test makes in the page (no retries: a failure shows at once)
CLIENT = """
  const client = new window.OpenAI({
    baseURL, apiKey, dangerouslyAllowBrowser: true, maxRetries: 0, timeout: 60000,
  });
"""


# ----------------------------------------------------------------------- fixtures


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(
            f"the openai-node browser test cannot run: {reason}. CI must be able to "
            f"install {SDK_DIR.relative_to(SDK_DIR.parents[2])}/package-lock.json "
            "with `npm ci` (Node.js with npm, and the npm registry reachable).",
            pytrace=False,
        )
    pytest.skip(reason)


def installed_version() -> str | None:
    manifest = SDK_DIR / "node_modules" / "openai" / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def openai_node() -> Path:
    """The pinned openai package in tests/browser/sdk/node_modules/."""
    if installed_version() != PINNED:
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm is not installed")
        lock = (SDK_DIR / "package-lock.json").exists()
        command = [npm, "ci" if lock else "install", "--no-audit", "--no-fund"]
        command += ["--ignore-scripts", "--loglevel=error"]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                cwd=SDK_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            _unavailable(f"`{' '.join(command[1:])}` took over {NPM_TIMEOUT} s")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip()[-1500:]
            _unavailable(f"`npm {command[1]}` failed ({done.returncode}): {tail}")
        took = time.monotonic() - started
        assert installed_version() == PINNED, f"npm installed {installed_version()}"
        print(f"npm {command[1]}: openai {PINNED} in {took:.1f} s")
    return SDK_DIR / "node_modules" / "openai"


@pytest.fixture(scope="module")
def sdk_origin(openai_node: Path, serve_directory) -> str:
    """The test page and the SDK's files, from ``localhost`` (the API is on
    ``127.0.0.1``, another port: another origin twice over)."""
    return serve_directory(SDK_DIR).replace("127.0.0.1", "localhost")


@pytest.fixture
def sdk_page(open_page, sdk_origin: str, api: Server):
    page = open_page(locale="en-US")
    sent: list[dict] = []

    def record(request) -> None:
        if request.url.startswith(api.base_url + "/"):
            headers = request.headers
            body = parse_body(headers.get("content-type", ""), request.post_data_buffer)
            sent.append({"method": request.method, "url": request.url,
                         "headers": headers, "body": body})  # fmt: skip

    page.on("request", record)
    page.goto(sdk_origin + "/index.html")
    page.wait_for_selector("html[data-ready='true']")
    assert page.evaluate("() => location.origin") != api.base_url
    page.sent = sent
    page.args = {"baseURL": api.base_url + "/v1", "apiKey": SESSION}
    return page


def run(page, body: str, **extra):
    """Run *body* (JavaScript with ``client``, ``baseURL``, ``apiKey`` and the
    *extra* names in scope) in the page and return what it returns."""
    names = ", ".join(["baseURL", "apiKey", *extra])
    script = f"async ({{{names}}}) => {{ {CLIENT} {body} }}"
    return page.evaluate(script, {**page.args, **extra})


def assert_sdk_headers(page, method: str, path: str) -> dict:
    """The SDK's own headers went to the API (so they passed the preflight)."""
    matching = [
        r for r in page.sent if r["method"] == method and r["url"].endswith(path)
    ]
    assert matching, [(r["method"], r["url"]) for r in page.sent]
    headers = matching[-1]["headers"]
    assert headers["x-stainless-lang"] == "js"
    assert headers["x-stainless-package-version"] == PINNED
    assert headers["x-stainless-retry-count"] == "0"
    assert headers["authorization"] == f"Bearer {SESSION}"
    return matching[-1]


def dict_of(entries: list[list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in entries:
        out.setdefault(name, []).append(value)
    return out


def preflighted(api: Server, path: str) -> bool:
    return re.search(rf'"OPTIONS {re.escape(path)} HTTP/1\.1" 200', api.output())


# ----------------------------------------------------------------------- images


def test_images_generate(sdk_page, api: Server, simulator: str):
    # openai-node sends no Idempotency-Key by itself (idempotencyHeader is unset
    # in 7.x); a page that wants one passes it, and CORS must let it through
    result = run(
        sdk_page,
        """
        const body = { model: "jimeng-4.0", prompt: "a lighthouse at dusk", n: 2,
                       size: "1024x1024" };
        const options = { headers: { "Idempotency-Key": key } };
        const { data, response, request_id } =
          await client.images.generate(body, options).withResponse();
        const again = await client.images.generate(body, options);
        return { status: response.status, requestId: request_id, size: data.size,
                 urls: data.data.map((image) => image.url),
                 again: again.data.map((image) => image.url) };
        """,
        key=f"browser-sdk-{time.time_ns()}",
    )
    assert result["status"] == 200
    assert len(result["urls"]) == 2
    assert all(url.startswith(simulator + "/") for url in result["urls"])
    assert result["size"] == "1024x1024"
    assert result["again"] == result["urls"]  # the same key: the same job, once
    # X-Request-ID is an exposed header: the SDK can read it cross-origin
    assert re.fullmatch(r"[0-9a-f]{32}", result["requestId"] or "")
    request = assert_sdk_headers(sdk_page, "POST", "/v1/images/generations")
    assert request["headers"]["idempotency-key"].startswith("browser-sdk-")
    assert request["body"]["model"] == "jimeng-4.0"
    assert preflighted(api, "/v1/images/generations")


def test_images_generate_stream(sdk_page):
    events = run(
        sdk_page,
        """
        const stream = await client.images.generate({
          model: "jimeng-4.0", prompt: "two kites", n: 2, stream: true,
          partial_images: 1,
        });
        const events = [];
        for await (const event of stream)
          events.push({ type: event.type, index: event.image_index,
                        png: atob(event.b64_json.slice(0, 8)).slice(1, 4) });
        return events;
        """,
    )
    assert [e["type"] for e in events] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ] * 2
    assert [e["index"] for e in events] == [0, 0, 1, 1]
    assert {e["png"] for e in events} == {"PNG"}


def test_images_edit_with_two_files_multipart_and_streamed(sdk_page, api: Server):
    result = run(
        sdk_page,
        """
        const file = async (colour, name) => {
          const canvas = Object.assign(document.createElement("canvas"),
                                       { width: 96, height: 64 });
          const g = canvas.getContext("2d");
          g.fillStyle = colour;
          g.fillRect(0, 0, 96, 64);
          const blob = await new Promise((done) => canvas.toBlob(done, "image/png"));
          return new File([blob], name, { type: "image/png" });
        };
        const image = [await file("#c33", "red.png"), await file("#33c", "blue.png")];
        // what the SDK hands to fetch (playwright does not show multipart bodies)
        const forms = [];
        const spy = new window.OpenAI({
          baseURL, apiKey, dangerouslyAllowBrowser: true, maxRetries: 0,
          fetch: (url, init) => {
            if (init.body instanceof FormData)
              forms.push([...init.body.entries()].map(([name, value]) =>
                [name, value instanceof File ? `file:${value.name}` : value]));
            return fetch(url, init);
          },
        });
        const edited = await spy.images.edit({
          model: "jimeng-4.0", prompt: "the same, in snow", image, n: 2,
        });
        const stream = await spy.images.edit({
          model: "jimeng-4.5", prompt: "the same, at night", image, n: 2, stream: true,
        });
        const events = [];
        for await (const event of stream)
          events.push({ type: event.type, index: event.image_index,
                        bytes: event.b64_json.length });
        const urls = edited.data.map((i) => i.url);
        return { urls, size: edited.size, events, forms };
        """,
    )
    assert len(result["urls"]) == 2 and all(result["urls"])
    width, height = map(int, result["size"].split("x"))
    assert width * 2 == height * 3  # no size given: the first reference's 3:2
    assert [(e["type"], e["index"]) for e in result["events"]] == [
        ("image_edit.completed", 0),
        ("image_edit.completed", 1),
    ]
    assert all(e["bytes"] > 100 for e in result["events"])
    assert_sdk_headers(sdk_page, "POST", "/v1/images/edits")
    plain, streamed = (dict_of(form) for form in result["forms"])
    assert plain["image[]"] == streamed["image[]"] == ["file:red.png", "file:blue.png"]
    assert "stream" not in plain and streamed["stream"] == ["true"]
    assert preflighted(api, "/v1/images/edits")


# ----------------------------------------------------------------------- chat


def test_chat_completions_stream(sdk_page, api: Server, simulator: str):
    result = run(
        sdk_page,
        """
        const stream = await client.chat.completions.create({
          model: "jimeng-4.0:16:9", n: 2, stream: true,
          messages: [{ role: "user", content: "a red fox in the snow" }],
        });
        const chunks = [];
        for await (const chunk of stream)
          chunks.push({ at: performance.now(), id: chunk.id, object: chunk.object,
                        content: chunk.choices[0]?.delta?.content ?? "",
                        finish: chunk.choices[0]?.finish_reason ?? null });
        return chunks;
        """,
    )
    content = "".join(c["content"] for c in result)
    urls = MARKDOWN_IMAGE.findall(content)
    assert len(urls) == 2 and all(u.startswith(simulator + "/") for u in urls)
    assert {c["object"] for c in result} == {"chat.completion.chunk"}
    assert len({c["id"] for c in result}) == 1
    assert result[-1]["finish"] == "stop"
    # each image in its own chunk, as it was ready: not one final batch
    arrivals = [c["at"] for c in result if "![" in c["content"]]
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] > 100  # ms
    assert "生成中" not in content  # no progress text for API clients
    assert_sdk_headers(sdk_page, "POST", "/v1/chat/completions")
    assert preflighted(api, "/v1/chat/completions")


# ----------------------------------------------------------------------- models


def test_models_list_and_retrieve(sdk_page, api: Server):
    result = run(
        sdk_page,
        """
        const ids = [];
        for await (const model of client.models.list()) ids.push(model.id);
        const one = await client.models.retrieve("jimeng-4.0");
        return { ids, one };
        """,
    )
    served = requests.get(api.base_url + "/v1/models", timeout=10).json()["data"]
    assert result["ids"] == [m["id"] for m in served]
    assert result["one"]["id"] == "jimeng-4.0"
    assert result["one"]["object"] == "model"
    assert_sdk_headers(sdk_page, "GET", "/v1/models")


# ----------------------------------------------------------------------- async tasks


def test_respond_async_with_fetch_then_the_task(sdk_page):
    result = run(
        sdk_page,
        """
        const headers = {
          Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json",
          Prefer: "respond-async", "Idempotency-Key": key,
        };
        const body = JSON.stringify({ model: "jimeng-4.0", prompt: "a lighthouse",
                                      n: 2 });
        const post = () => fetch(`${baseURL}/images/generations`,
                                 { method: "POST", headers, body });
        const first = await post();
        const task = await first.json();
        const seen = [];
        let latest = task;
        while (["queued", "in_progress"].includes(latest.status)) {
          await new Promise((done) => setTimeout(done, 200));
          const auth = { Authorization: `Bearer ${apiKey}` };
          const polled = await fetch(`${baseURL}/tasks/${task.id}`, { headers: auth });
          latest = await polled.json();
          seen.push(latest.status);
        }
        const again = await post();  // the same Idempotency-Key: the same task
        const viaSdk = await client.get(`/tasks/${task.id}`);
        return {
          status: first.status, location: first.headers.get("Location"),
          task, seen, latest,
          again: { status: again.status, body: await again.json() }, viaSdk,
        };
        """,
        key=f"browser-async-{time.time_ns()}",
    )
    task = result["task"]
    assert result["status"] == 202
    assert task["object"] == "task" and task["status"] == "in_progress"
    assert result["location"] == f"/v1/tasks/{task['id']}"  # exposed header
    assert result["seen"][-1] == "completed"
    done = result["latest"]
    assert len(done["result"]["data"]) == 2
    assert all(i["url"].startswith("http") for i in done["result"]["data"])
    assert result["again"]["body"]["id"] == task["id"]
    assert result["viaSdk"]["result"] == done["result"]


# ----------------------------------------------------------------------- errors


def test_errors_are_the_sdk_classes(sdk_page):
    result = run(
        sdk_page,
        """
        const { AuthenticationError, NotFoundError, BadRequestError } =
          window.openaiSdk;
        const outcome = async (call, cls) => {
          try {
            await call();
            return "no error";
          } catch (err) {
            return { is: err instanceof cls, name: err.constructor.name,
                     status: err.status, code: err.code, requestId: err.requestID };
          }
        };
        const stranger = new window.OpenAI({ baseURL, apiKey: "invalid-sdk-1",
          dangerouslyAllowBrowser: true, maxRetries: 0 });
        return {
          auth: await outcome(() => stranger.images.generate({ prompt: "x" }),
                              AuthenticationError),
          model: await outcome(() => client.images.generate({ model: "jimeng-9",
                                                              prompt: "x" }),
                               NotFoundError),
          invalid: await outcome(() => client.images.generate({ model: "jimeng-4.0",
                                                                prompt: "x", n: 99 }),
                                 BadRequestError),
        };
        """,
    )
    assert result["auth"]["is"] and result["auth"]["status"] == 401, result
    assert result["model"]["is"] and result["model"]["status"] == 404, result
    assert result["model"]["code"] == "model_not_found"
    assert result["invalid"]["is"] and result["invalid"]["status"] == 400, result
    assert all(r["requestId"] for r in result.values())
