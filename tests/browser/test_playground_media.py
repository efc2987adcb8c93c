"""The playground's reference images and its video tab, in headless Chromium
against the real gunicorn + gevent server and the simulator (conftest.py).

Reference images are picked (or dropped) as files, shown as thumbnails in
order, made small in the browser when large, and sent as multipart
``image[]`` to ``POST /v1/images/edits`` (``stream: true`` by default: each
``image_edit.completed`` event is shown as it arrives; the history then keeps
the images' URLs from the task). A reference can also be an image URL (typed,
pasted or dropped): then the edit is JSON, ``image`` the list of URLs and the
files' data: URIs in order, and the server fetches the URLs. Which models take
how many comes from ``/v1/models`` (``max_references`` when the server sends
it, else the README's rules). The video tab posts ``/v1/videos``, polls
``GET /v1/videos/{id}`` and plays ``GET /v1/videos/{id}/content`` (fetched with
the token) in a ``<video>``. Desktop 1280×900 and phone 390×844.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from jimeng_api.upstream.video import get_video_model
from jimeng_api.videos import model_sizes
from tests.browser.helpers import (
    ALL_IMAGES_LOADED,
    CJK,
    PHONE,
    PHONE_OPTIONS,
    SESSION,
    VIDEO_TASK_SECONDS,
    assert_done,
    body_text,
    choose,
    image_count,
    latest,
    open_playground,
    require_browser,
    screenshot,
    set_stream,
    wait_for_outcome,
)
from tests.servers import Server

sync_api = require_browser()
expect = sync_api.expect

pytestmark = pytest.mark.server

VIDEO_MODEL = "jimeng-video-seedance-2.5"

# Every fetch() the page makes, with what its FormData or JSON body held
# (playwright does not show multipart bodies built from Blobs).
RECORD_FETCH = """
  window.__sent = [];
  const original = window.fetch;
  window.fetch = function (input, init = {}) {
    const entry = { url: String(input instanceof Request ? input.url : input),
                    method: init.method || 'GET',
                    auth: new Headers(init.headers || {}).get('Authorization') };
    const body = init.body;
    if (body instanceof FormData) {
      entry.form = [...body.entries()].map(([name, value]) => [name,
        value instanceof Blob ? { file: value.name, type: value.type, size: value.size }
                              : value]);
      entry.blobs = [...body.values()].filter((v) => v instanceof Blob);
    } else if (typeof body === 'string') {
      try { entry.json = JSON.parse(body); } catch { entry.text = body; }
    }
    window.__sent.push(entry);
    return original.apply(this, arguments);
  };
"""


# ----------------------------------------------------------------------- helpers


def png_file(directory: Path, name: str, size=(120, 80), colour=(200, 60, 60)) -> Path:
    path = directory / name
    Image.new("RGB", size, colour).save(path, "PNG")
    return path


def noisy_png(directory: Path, name: str, size=(3000, 1500)) -> Path:
    """A PNG that is both too wide and too heavy to send as it is."""
    path = directory / name
    Image.effect_noise(size, 80).convert("RGB").save(path, "PNG")
    return path


def sent(page, path: str, method: str = "POST") -> list[dict]:
    return [
        s
        for s in page.evaluate("() => window.__sent.map(({blobs, ...s}) => s)")
        if s["method"] == method and s["url"].split("?")[0].endswith(path)
    ]


def form_fields(entry: dict) -> dict[str, list]:
    out: dict[str, list] = {}
    for name, value in entry["form"]:
        out.setdefault(name, []).append(value)
    return out


def open_media_page(open_page, api: Server, **options):
    page = open_page(**options)
    page.add_init_script(RECORD_FETCH)
    open_playground(page, api.base_url + "/")
    return page


def references(page) -> list[str]:
    """The thumbnails' labels (their order) in the reference picker."""
    return page.eval_on_selector_all(
        "#references .ref",
        "els => els.map((e) => (e.querySelector('img') || {}).alt"
        " ?? e.querySelector('.ref-placeholder').title)",
    )


def add_references(page, *paths: Path) -> None:
    before = page.locator("#references .ref").count()
    page.set_input_files("#references-input", [str(p) for p in paths])
    page.wait_for_function(
        f"() => document.querySelectorAll('#references .ref').length >= {before} + 1"
        f" || document.querySelector('#references .refs-notice').textContent"
    )
    page.wait_for_timeout(100)


def drop_files(page, selector: str, files: list[tuple[str, str, bytes]]) -> None:
    """Drop (name, type, bytes) files on *selector* as a drag from the desktop does."""
    payload = [
        {"name": n, "type": t, "b64": base64.b64encode(b).decode()} for n, t, b in files
    ]
    page.evaluate(
        """([selector, files]) => {
          const dt = new DataTransfer();
          for (const f of files) {
            const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name, { type: f.type }));
          }
          const target = document.querySelector(selector);
          for (const type of ['dragenter', 'dragover', 'drop'])
            target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true,
                                                       cancelable: true }));
        }""",
        [selector, payload],
    )


def add_url(page, value: str, enter: bool = True) -> None:
    """Type *value* in the reference URL field; Enter, or the button."""
    before = page.text_content("#references").strip()
    page.fill("#references-url", value)
    if enter:
        page.press("#references-url", "Enter")
    else:
        page.click("#references .ref-url-add")
    page.wait_for_function(
        "(before) => document.querySelector('#references').textContent.trim()"
        " !== before || document.querySelector('#references .ref-list').children"
        ".length",
        arg=before,
    )


def paste_text(page, selector: str, text: str) -> None:
    """Paste *text* (Ctrl+V) with the focus on *selector*."""
    page.focus(selector)
    page.evaluate(
        """([selector, text]) => {
          const data = new DataTransfer();
          data.setData('text/plain', text);
          document.querySelector(selector).dispatchEvent(new ClipboardEvent('paste',
            { clipboardData: data, bubbles: true, cancelable: true }));
        }""",
        [selector, text],
    )


def drop_url(page, selector: str, url: str) -> None:
    """Drop a link (an image dragged from another page) on *selector*."""
    page.evaluate(
        """([selector, url]) => {
          const dt = new DataTransfer();
          dt.setData('text/uri-list', url);
          const target = document.querySelector(selector);
          for (const type of ['dragenter', 'dragover', 'drop'])
            target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true,
                                                       cancelable: true }));
        }""",
        [selector, url],
    )


def png_bytes(size=(64, 48), colour=(20, 160, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def choose_image_model(page, model: str = "jimeng-4.0") -> None:
    page.select_option("#model", model)
    choose(page, "ratio", "16:9")
    choose(page, "resolution", "2k")
    choose(page, "n", "2")


# ----------------------------------------------------------------------- references


def test_references_are_picked_removed_and_streamed_through_edits(
    api: Server, open_page, tmp_path: Path, simulator: str
):
    page = open_media_page(open_page, api)
    choose_image_model(page)
    assert page.is_visible("#references")
    assert "最多 10 张" in page.text_content("#references-hint")
    red = png_file(tmp_path, "red.png", colour=(220, 40, 40))
    green = png_file(tmp_path, "green.png", colour=(40, 200, 40))
    blue = png_file(tmp_path, "blue.png", colour=(40, 40, 220))
    add_references(page, red, green, blue)
    expect(page.locator("#references .ref")).to_have_count(3)
    assert references(page) == ["red.png", "green.png", "blue.png"]
    assert page.eval_on_selector_all(
        "#references .ref-label", "els => els.map((e) => e.textContent)"
    ) == ["1", "2", "3"]
    assert page.text_content("#references-count") == "3/10"

    page.click("#references .ref:nth-child(2) .ref-remove")  # green goes
    assert references(page) == ["red.png", "blue.png"]
    assert page.text_content("#references-count") == "2/10"
    page.fill("#prompt", "the same two colours, as a flag")
    page.evaluate(
        """() => {
          window.__arrivals = [];
          new MutationObserver(() => {
            const n = document.querySelectorAll('#gallery img.result-image').length;
            if (n > window.__arrivals.length) window.__arrivals.push(performance.now());
          }).observe(document.body, {subtree: true, childList: true});
        }"""
    )

    page.click("#generate")

    assert latest(page).locator(".thumb.pending").count() == 2
    assert_done(page)
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert image_count(page) == 2
    arrivals = page.evaluate("() => window.__arrivals")
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] > 100  # one by one
    (post,) = sent(page, "/v1/images/edits")
    fields = form_fields(post)
    assert fields["image[]"] == [
        {"file": "red.png", "type": "image/png", "size": red.stat().st_size},
        {"file": "blue.png", "type": "image/png", "size": blue.stat().st_size},
    ]  # small files go as they are, in order
    assert {k: v for k, v in fields.items() if k != "image[]"} == {
        "model": ["jimeng-4.0"],
        "prompt": ["the same two colours, as a flag"],
        "n": ["2"],
        "ratio": ["16:9"],
        "resolution": ["2k"],
        "stream": ["true"],
    }
    assert post["auth"] == f"Bearer {SESSION}"
    assert sent(page, "/v1/chat/completions") == []
    # the stream carried bytes; the history keeps the task's URLs
    assert any(
        "/v1/tasks/task_" in s["url"] for s in page.evaluate("() => window.__sent")
    )
    urls = (
        latest(page)
        .locator("img.result-image")
        .evaluate_all("els => els.map((e) => e.src)")
    )
    assert all(u.startswith(simulator + "/") for u in urls), urls
    meta = latest(page).locator(".entry-meta").text_content()
    assert meta.startswith("jimeng-4.0 · 16:9 · 2K · 参考图 2 张 · 2 张")
    assert latest(page).locator(".entry-refs img").count() == 2
    screenshot(page, "playground-references.png")

    # kept across a reload, references included; "run again" sends them again
    page.reload()
    page.wait_for_selector("html[data-ready='true']")
    assert latest(page).locator(".entry-refs img").count() == 2
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert references(page) == []  # the picker starts empty on each visit
    latest(page).locator("button.rerun").click()
    assert references(page) == ["red.png", "blue.png"]
    assert_done(page)
    (again,) = sent(page, "/v1/images/edits")
    assert [f["file"] for f in form_fields(again)["image[]"]] == ["red.png", "blue.png"]


def test_references_without_streaming(api: Server, open_page, tmp_path: Path):
    page = open_media_page(open_page, api, locale="en-US")
    choose_image_model(page, "jimeng-4.5")
    add_references(page, png_file(tmp_path, "a.png", size=(90, 160)))
    set_stream(page, False)
    page.fill("#prompt", "a portrait in the same light")

    page.click("#generate")

    assert_done(page)
    assert image_count(page) == 2
    (post,) = sent(page, "/v1/images/edits")
    fields = form_fields(post)
    assert "stream" not in fields and fields["image[]"][0]["file"] == "a.png"
    meta = latest(page).locator(".entry-meta").text_content()
    assert "1 reference(s)" in meta


def test_large_and_wrong_files_are_handled_in_the_browser(
    api: Server, open_page, tmp_path: Path
):
    page = open_media_page(open_page, api)
    choose_image_model(page)
    big = noisy_png(tmp_path, "big.png")
    assert big.stat().st_size > 2_000_000
    drop_files(
        page,
        "#references",
        [
            ("notes.txt", "text/plain", b"not an image"),
            ("logo.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            ("broken.png", "image/png", png_bytes()[:40]),
            ("big.png", "image/png", big.read_bytes()),
        ],
    )
    expect(page.locator("#references .ref")).to_have_count(1)
    notice = page.text_content("#references .refs-notice")
    assert "notes.txt 不是 PNG" in notice and "logo.svg 不是 PNG" in notice
    assert "无法读取图片 broken.png" in notice
    page.fill("#prompt", "a big one")
    page.click("#generate")
    assert_done(page)
    # sent at most 2048 px on the long side, re-encoded (WebP keeps transparency)
    shape = page.evaluate(
        """async () => {
          const post = window.__sent.find((s) => s.url.endsWith('/v1/images/edits'));
          const blob = post.blobs[0];
          const bitmap = await createImageBitmap(blob);
          return [bitmap.width, bitmap.height, blob.type, blob.size, blob.name];
        }"""
    )
    assert shape[:3] == [2048, 1024, "image/webp"], shape
    assert shape[3] < big.stat().st_size and shape[4] == "big.webp"

    # the language switch redraws the notices
    drop_files(page, "#references", [("x.txt", "text/plain", b"x")])
    page.click("[data-lang='en']")
    assert "x.txt is not a PNG" in page.text_content("#references .refs-notice")


def test_references_follow_the_model(api: Server, open_page, tmp_path: Path):
    page = open_media_page(open_page, api)
    files = [png_file(tmp_path, f"{i}.png", colour=(i * 60, 90, 90)) for i in range(4)]

    page.select_option("#model", "jimeng-3.0")
    assert page.text_content("#model-caps") == "最多 4 张 · 最高 2K · 参考图最多 1 张"
    assert "1 张" in page.text_content("#references-hint")
    assert page.get_attribute("#references-input", "multiple") is None
    drop_files(
        page, "#references", [(f.name, "image/png", f.read_bytes()) for f in files[:2]]
    )
    expect(page.locator("#references .ref")).to_have_count(1)
    assert references(page) == ["0.png"]  # one fits
    assert "最多 1 张：有 1 张没有添加" in page.text_content("#references .refs-notice")
    assert page.is_hidden("#references .ref-add")

    page.select_option("#model", "jimeng-4.0")
    assert page.is_visible("#references .ref-add")
    add_references(page, *files[1:])
    assert len(references(page)) == 4

    page.select_option("#model", "jimeng-3.1")  # one of four is sent
    assert page.locator("#references .ref.excess").count() == 3
    assert "后面的 3 张不会发送" in page.text_content("#references .refs-notice")

    page.select_option("#model", "jimeng-2.0")  # none
    assert page.is_hidden("#references")
    assert page.text_content("#model-caps") == "最多 4 张 · 最高 2K · 不支持参考图"
    unsupported = page.text_content("#references-unsupported")
    assert "jimeng-2.0 不支持参考图" in unsupported and "4 张不会发送" in unsupported
    page.fill("#prompt", "text only")
    choose(page, "n", "1")
    page.click("#generate")
    assert_done(page)
    assert sent(page, "/v1/images/edits") == []
    assert len(sent(page, "/v1/chat/completions")) == 1

    page.select_option("#model", "jimeng-3.1")
    choose(page, "n", "1")
    page.click("#generate")
    assert_done(page)
    (post,) = sent(page, "/v1/images/edits")
    assert [f["file"] for f in form_fields(post)["image[]"]] == ["0.png"]


def test_the_server_takes_the_most_references_the_page_offers_and_refuses_more(
    api: Server, page
):
    open_playground(page, api.base_url + "/")
    caps = page.evaluate(
        """async () => {
          const { imageModels } = await import('/static/playground/models.js');
          const { data } = await (await fetch('/v1/models')).json();
          return imageModels(data).map((m) => [m.id, m.maxReferences]);
        }"""
    )
    assert dict(caps)["jimeng-4.0"] == 10 and dict(caps)["jimeng-3.0"] == 1
    assert dict(caps)["jimeng-2.0"] == 0
    url = api.base_url + "/v1/images/edits"
    headers = {"Authorization": f"Bearer {SESSION}"}
    image = png_bytes()

    def post(model: str, count: int) -> requests.Response:
        files = [("image[]", (f"{i}.png", image, "image/png")) for i in range(count)]
        data = {"model": model, "prompt": "limits", "n": "1"}
        return requests.post(url, data=data, files=files, headers=headers, timeout=60)

    for model, most in caps:
        if most:
            response = post(model, most)
            assert response.status_code == 200, (model, most, response.text)
        refused = post(model, most + 1)
        assert refused.status_code == 400, (model, most)
        code = refused.json()["error"]["code"]
        assert code in ("too_many_images", "model_not_supported"), code


def test_server_fields_on_references_win_and_its_refusal_is_localized(
    api: Server, open_page, tmp_path: Path
):
    """A /v1/models that says max_references wins over the rules; when the
    server still refuses, the page says why in the user's language."""
    real = requests.get(api.base_url + "/v1/models", timeout=10).json()
    for model in real["data"]:
        if model["id"] == "jimeng-4.0":
            model["max_references"] = 2
        if model["id"] == "jimeng-2.0":
            model["image_to_image"] = True  # claims more than the server takes
            model.pop("max_references", None)
    page = open_page(locale="en-US")
    page.route(
        "**/v1/models",
        lambda route: route.fulfill(
            json=real, headers={"Access-Control-Allow-Origin": "*"}
        ),
    )
    page.add_init_script(RECORD_FETCH)
    open_playground(page, api.base_url + "/")
    page.select_option("#model", "jimeng-4.0")
    assert page.text_content("#model-caps").endswith("up to 2 reference image(s)")
    add_references(page, *(png_file(tmp_path, f"{i}.png") for i in range(3)))
    assert len(references(page)) == 2

    page.select_option("#model", "jimeng-2.0")
    assert page.is_visible("#references")
    page.fill("#prompt", "refused")
    page.click("#generate")

    assert wait_for_outcome(page) == "error"
    assert page.text_content("#error .error-message") == (
        "This model takes no reference images (HTTP 400)."
    )
    assert "cannot generate from reference images" in page.text_content(
        "#error .error-detail"
    )
    page.click("[data-lang='zh']")
    assert (
        page.text_content("#error .error-message")
        == "这个模型不支持参考图（HTTP 400）。"
    )


def test_references_on_a_phone(api: Server, open_page, tmp_path: Path):
    page = open_media_page(open_page, api, **PHONE_OPTIONS)
    choose_image_model(page)
    add_references(
        page,
        png_file(tmp_path, "sky.png", colour=(90, 150, 230)),
        png_file(tmp_path, "sand.png", colour=(230, 200, 140)),
    )
    assert page.evaluate("() => document.documentElement.scrollWidth - innerWidth") <= 0
    box = page.locator("#references").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.fill("#prompt", "a beach, in these colours")

    page.tap("#generate")

    page.wait_for_selector("#gallery img.result-image")
    page.wait_for_function(
        """() => {
          const top = document.querySelector('#output').getBoundingClientRect().top;
          return top >= 0 && top < 40;
        }"""
    )
    assert_done(page)
    page.wait_for_function(ALL_IMAGES_LOADED)
    screenshot(page, "playground-references-phone.png", full_page=False)


# ----------------------------------------------------------------------- reference URLs


@pytest.fixture(scope="module")
def sim_image_url(api: Server) -> str:
    """A (signed) image URL the simulator serves: one text-to-image result."""
    response = requests.post(
        api.base_url + "/v1/images/generations",
        json={"model": "jimeng-4.0", "prompt": "a reference by URL", "n": 1},
        headers={"Authorization": f"Bearer {SESSION}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"][0]["url"]


def sim_uploads(simulator: str) -> int:
    stats = requests.get(simulator + "/__sim/stats", params={"tasks": 0}, timeout=10)
    return stats.json()["uploads"]


def test_a_reference_url_is_sent_as_the_url_in_its_place(
    api: Server, open_page, tmp_path: Path, simulator: str, sim_image_url: str
):
    page = open_media_page(open_page, api)
    choose_image_model(page)
    choose(page, "n", "1")
    red = png_file(tmp_path, "red.png", colour=(220, 40, 40))
    add_references(page, red)

    add_url(page, sim_image_url)  # typed, then Enter (not the form's submit)
    expect(page.locator("#references .ref")).to_have_count(2)
    assert page.input_value("#references-url") == ""
    assert sent(page, "/v1/images/edits") == sent(page, "/v1/chat/completions") == []
    thumb = page.locator("#references .ref:nth-child(2) img")
    assert thumb.get_attribute("src") == sim_image_url  # shown as it is
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    green = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    paste_text(page, "#references-input", green)  # Ctrl+V in the drop zone
    missing = simulator + "/img/missing/0.png"
    drop_url(page, "#references", missing)
    expect(page.locator("#references .ref")).to_have_count(4)
    assert references(page) == ["red.png", "0.png", "image/png", "0.png"]
    # an image that does not load leaves its host name
    placeholder = page.locator("#references .ref:nth-child(4) .ref-placeholder")
    expect(placeholder).to_have_text("127.0.0.1")
    assert page.text_content("#references-count") == "4/10"
    page.click("#references .ref:nth-child(4) .ref-remove")
    assert page.text_content("#references-count") == "3/10"

    uploads = sim_uploads(simulator)
    page.fill("#prompt", "these three, together")
    page.click("#generate")
    assert_done(page)

    (post,) = sent(page, "/v1/images/edits")
    body = post["json"]
    image = body.pop("image")
    assert (
        image[0]
        == "data:image/png;base64," + base64.b64encode(red.read_bytes()).decode()
    )
    assert image[1:] == [sim_image_url, green]  # in their order, as given
    assert body == {
        "model": "jimeng-4.0",
        "prompt": "these three, together",
        "n": 1,
        "ratio": "16:9",
        "resolution": "2k",
        "stream": True,
    }
    assert sim_uploads(simulator) - uploads == 3  # the server fetched the URL
    strip = latest(page).locator(".entry-refs img")
    expect(strip).to_have_count(3)
    assert strip.nth(1).get_attribute("src") == sim_image_url

    # kept in the history: "run again" sends the URL again
    page.reload()
    page.wait_for_selector("html[data-ready='true']")
    latest(page).locator("button.rerun").click()
    assert references(page) == ["red.png", "0.png", "image/png"]
    assert_done(page)
    (again,) = sent(page, "/v1/images/edits")
    assert again["json"]["image"] == image


def test_a_bad_reference_url_is_refused_with_a_message(api: Server, open_page):
    page = open_media_page(open_page, api)
    page.select_option("#model", "jimeng-4.0")
    notice = page.locator("#references .refs-notice")
    for value in [
        "ftp://example.com/a.png",
        "javascript:alert(1)",
        "example.com/a.png",
        "data:text/plain;base64,aGk=",
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "data:image/png,not-base64",
    ]:
        add_url(page, value, enter=value.startswith("ftp"))
        expect(notice).to_contain_text("不是 http(s) 图片链接")
        assert value in notice.text_content()
        assert page.input_value("#references-url") == value  # kept, to correct it
        assert page.get_attribute("#references-url", "aria-invalid") == "true"
    paste_text(page, "#references .ref-url-add", "not a link")
    expect(notice).to_contain_text("“not a link” 不是")
    assert page.locator("#references .ref").count() == 0
    assert page.text_content("#references-count") == ""
    page.click("[data-lang='en']")
    expect(notice).to_have_text(
        '"not a link" is neither an http(s) image URL nor a data:image/… URI;'
        " not added."
    )
    long = "data:text/plain;base64," + "A" * 500
    add_url(page, long, enter=False)
    assert len(notice.text_content()) < 150  # the value is cut short
    assert page.get_attribute("#references-url", "placeholder").startswith(
        "or paste an image URL"
    )
    assert sent(page, "/v1/images/edits") == sent(page, "/v1/chat/completions") == []


def test_the_reference_limit_counts_urls(
    api: Server, open_page, tmp_path: Path, simulator: str
):
    page = open_media_page(open_page, api)
    url = simulator + "/img/any/0.png"
    page.select_option("#model", "jimeng-3.0")  # one reference
    add_url(page, url)
    expect(page.locator("#references .ref")).to_have_count(1)
    assert page.text_content("#references-count") == "1/1"
    assert page.is_disabled("#references-url") and page.is_disabled("#references-input")
    assert page.is_hidden("#references .ref-add")
    notice = page.locator("#references .refs-notice")
    paste_text(page, "#references .ref-remove", simulator + "/img/other/0.png")
    expect(notice).to_have_text("最多 1 张：有 1 张没有添加。")
    drop_files(page, "#references", [("a.png", "image/png", png_bytes())])
    page.wait_for_timeout(100)
    assert references(page) == ["0.png"]

    page.select_option("#model", "jimeng-4.0")
    assert page.is_enabled("#references-url")
    add_references(page, png_file(tmp_path, "b.png"))
    assert page.text_content("#references-count") == "2/10"
    page.select_option("#model", "jimeng-3.1")  # the URL is sent, the file not
    assert page.locator("#references .ref.excess").count() == 1
    page.fill("#prompt", "one")
    job = page.evaluate(
        "async () => (await import('/static/playground/form.js')).readJob()"
    )
    assert job["references"] == [{"url": url, "name": "0.png"}]
    # a URL the server cannot fetch (a bad signature): refused, nothing spent
    page.click("#generate")
    assert wait_for_outcome(page) == "error"
    assert page.text_content("#error .error-message") == (
        "服务器下载不了参考图链接 image[0]（HTTP 400）。"
    )
    assert "127.0.0.1" in page.text_content("#error .error-detail")
    (post,) = sent(page, "/v1/images/edits")
    assert post["json"]["image"] == [url]


# ----------------------------------------------------------------------- video


def open_video_tab(page) -> None:
    page.wait_for_selector("#tab-video:not([hidden])")
    page.click("#tab-video")
    assert page.get_attribute("#tab-video", "aria-selected") == "true"
    assert page.is_visible("#video-model") and page.is_hidden("#model")


def video_model_ids(api: Server) -> list[str]:
    models = requests.get(api.base_url + "/v1/models", timeout=10).json()["data"]
    return [
        m["id"]
        for m in models
        if m.get("kind") == "video" and not m.get("needs_browser_tokens")
    ]


PLAYABLE = """
  () => {
    const v = document.querySelector('#gallery .entry video.result-video');
    return v && v.src.startsWith('blob:') && (v.readyState >= 2 || v.error);
  }
"""


def test_video_tab_generates_polls_and_plays(api: Server, open_page, tmp_path: Path):
    page = open_media_page(open_page, api)
    open_video_tab(page)
    options = page.eval_on_selector_all(
        "#video-model option", "os => os.map((o) => o.value)"
    )
    assert options == video_model_ids(api)
    assert "jimeng-video-seedance-2.0" not in options  # needs browser tokens
    page.select_option("#video-model", VIDEO_MODEL)
    model = get_video_model(VIDEO_MODEL)
    assert page.eval_on_selector_all(
        "input[name='seconds']", "els => els.map((e) => Number(e.value))"
    ) == list(model.seconds)
    assert page.text_content("#video-caps") == "4–15 秒 · 最高 1080P"
    assert page.text_content("#generate") == "生成视频"
    choose(page, "seconds", "5")
    choose(page, "video-ratio", "16:9")
    choose(page, "video-resolution", "720p")
    page.set_input_files("#frames-input", str(png_file(tmp_path, "first.png")))
    expect(page.locator("#frames .ref")).to_have_count(1)
    assert page.text_content("#frames .ref-label") == "首帧"
    page.fill("#prompt", "a red fox running in the snow")
    page.evaluate(
        """() => {
          window.__statuses = [];
          new MutationObserver(() => window.__statuses.push(
            document.querySelector('#status').textContent)).observe(
            document.querySelector('#status'), {subtree: true, childList: true,
                                                 characterData: true});
        }"""
    )

    page.click("#generate")

    card = latest(page)
    assert card.get_attribute("data-kind") == "video"
    page.wait_for_selector("#gallery .entry progress.video-progress")
    assert_done(page)
    page.wait_for_function(PLAYABLE)
    (post,) = sent(page, "/v1/videos")
    body = post["json"]
    assert body["input_reference"].startswith("data:image/png;base64,")
    del body["input_reference"]
    assert body == {
        "model": VIDEO_MODEL,
        "prompt": "a red fox running in the snow",
        "seconds": "5",
        "size": "1280x720",
    }
    polls = [
        s
        for s in page.evaluate("() => window.__sent")
        if re.search(r"/v1/videos/task_\w+$", s["url"])
    ]
    assert polls and all(p["auth"] == f"Bearer {SESSION}" for p in polls)
    (content,) = [s for s in page.evaluate("() => window.__sent")
                  if s["url"].endswith("/content")]  # fmt: skip
    assert content["auth"] == f"Bearer {SESSION}"
    statuses = page.evaluate("() => window.__statuses")
    assert any(re.match(r"(生成中 · \d+%|排队中)", s) for s in statuses), statuses
    assert re.fullmatch(
        r"完成 · 5 秒的视频 · 用时 [\d.]+ 秒", page.text_content("#status")
    )
    meta = card.locator(".entry-meta").text_content()
    assert meta.startswith(f"{VIDEO_MODEL} · 16:9 · 720P · 视频 5 秒 · ")
    video = page.evaluate(
        """() => {
          const v = document.querySelector('#gallery .entry video.result-video');
          return { state: v.readyState, error: v.error && v.error.code,
                   duration: v.duration, width: v.videoWidth, height: v.videoHeight };
        }"""
    )
    # the simulator's MP4 decodes: 5 s at 16:9 (downscaled, like its images)
    assert video["error"] is None and video["duration"] == 5, video
    assert video["width"] * 9 == video["height"] * 16, video
    download = card.locator("a.download-video")
    assert download.is_visible()
    assert download.get_attribute("href").startswith("blob:")
    assert download.get_attribute("download").endswith(".mp4")
    page.wait_for_timeout(1000)  # the player's controls settle
    screenshot(page, "playground-video.png")

    # after a reload the file is fetched again on demand
    page.reload()
    page.wait_for_selector("html[data-ready='true']")
    assert latest(page).get_attribute("data-state") == "done"
    latest(page).locator("button.load-video").click()
    page.wait_for_function(PLAYABLE)

    # run again: the video tab, the same settings (frame included)
    page.click("#tab-image")
    latest(page).locator("button.rerun").click()
    assert page.get_attribute("#tab-video", "aria-selected") == "true"
    assert page.is_checked("input[name='seconds'][value='5']")
    expect(page.locator("#frames .ref")).to_have_count(1)
    assert_done(page)
    assert len(sent(page, "/v1/videos")) == 1  # counts since the reload


def test_the_server_makes_every_size_and_duration_the_page_offers(api: Server, page):
    """The page's size for each ratio × resolution is the server's own for that
    model (jimeng_api.videos.model_sizes), and its durations are the model's."""
    open_playground(page, api.base_url + "/")
    offered = page.evaluate(
        """async () => {
          const { videoModels, videoSize } =
            await import('/static/playground/models.js');
          const { data } = await (await fetch('/v1/models')).json();
          return videoModels(data).map((m) => ({
            id: m.id, seconds: m.seconds,
            sizes: m.resolutions.flatMap((r) => m.ratios.map((q) =>
              [videoSize(q, r), q, r])),
          }));
        }"""
    )
    assert [m["id"] for m in offered] == video_model_ids(api)
    for model in offered:
        server = get_video_model(model["id"])
        assert model["seconds"] == list(server.seconds), model["id"]
        own = model_sizes(server)
        for size, ratio, resolution in model["sizes"]:
            assert own.get(size) == (ratio, resolution), (model["id"], size)
        assert len(model["sizes"]) == len(own)
    # and one real job per model at its largest size and longest duration
    headers = {"Authorization": f"Bearer {SESSION}"}
    for model in offered:
        size = model["sizes"][-1][0]
        body = {"model": model["id"], "prompt": "sizes", "size": size,
                "seconds": str(model["seconds"][-1])}  # fmt: skip
        response = requests.post(
            api.base_url + "/v1/videos", json=body, headers=headers, timeout=30
        )
        assert response.status_code == 200, (body, response.text)
        assert response.json()["size"] == size


@pytest.fixture
def slow_videos(simulator: str) -> Iterator[None]:
    config = simulator + "/__sim/config"
    requests.post(config, json={"video_task_seconds": 8}, timeout=10).raise_for_status()
    try:
        yield
    finally:
        body = {"video_task_seconds": VIDEO_TASK_SECONDS}
        requests.post(config, json=body, timeout=10)


def test_video_cancel_then_check_progress_and_reload_resumes(
    api: Server, open_page, slow_videos
):
    page = open_media_page(open_page, api, locale="en-US")
    open_video_tab(page)
    page.select_option("#video-model", VIDEO_MODEL)
    page.fill("#prompt", "a slow tide")
    page.click("#generate")
    page.wait_for_function(
        "() => window.__sent.some((s) => s.url.endsWith('/v1/videos'))"
    )
    page.wait_for_selector("#gallery .entry progress")

    page.click("#cancel")
    explanation = page.text_content("#cancel-explain")
    assert (
        "goes on making this video" in explanation and "Check progress" in explanation
    )
    page.click("#cancel-confirm-yes")

    assert wait_for_outcome(page) == "cancelled"
    card = latest(page)
    assert card.get_attribute("data-state") == "cancelled"
    assert "Check progress" in card.locator(".entry-note").text_content()
    assert page.is_enabled("#generate")
    card.locator("button.check-video").click()
    assert card.get_attribute("data-state") == "running"
    expect(card).to_have_attribute("data-state", "done", timeout=30_000)
    page.wait_for_function(PLAYABLE)
    assert card.locator("button.check-video").is_hidden()

    # a page closed while waiting collects its video when it opens again
    page.fill("#prompt", "another tide")
    page.click("#generate")
    page.wait_for_selector("#gallery .entry[data-state='running'] progress")
    # polled once: the video id is in the history by then
    polled = len(
        [
            s
            for s in page.evaluate("() => window.__sent")
            if "/v1/videos/task_" in s["url"]
        ]
    )
    page.wait_for_function(
        f"""() => window.__sent.filter((s) => s.url.includes('/v1/videos/task_'))
                    .length > {polled}"""
    )
    page.reload()
    page.wait_for_selector("html[data-ready='true']")
    assert latest(page).locator(".entry-prompt").text_content() == "another tide"
    expect(latest(page)).to_have_attribute("data-state", "done", timeout=30_000)
    page.wait_for_function(PLAYABLE)


@pytest.fixture
def no_video_credits(simulator: str) -> Iterator[None]:
    config = simulator + "/__sim/config"
    requests.post(config, json={"video_gift_spendable": False}, timeout=10)
    try:
        yield
    finally:
        requests.post(config, json={"video_gift_spendable": True}, timeout=10)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("zh-CN", "赠送积分不能用于视频"), ("en-US", "gift credits do not")],
)
def test_video_errors_are_localized(
    api: Server, open_page, no_video_credits, locale: str, expected: str
):
    page = open_media_page(open_page, api, locale=locale)
    page.fill("#credentials", "gift-only-session-" + locale)
    open_video_tab(page)
    page.fill("#prompt", "no credits for this")
    page.click("#generate")
    assert wait_for_outcome(page) == "error"
    assert expected in page.text_content("#error .error-message")
    assert latest(page).get_attribute("data-state") == "error"
    assert expected in latest(page).locator(".entry-note").text_content()


def test_no_video_tab_without_usable_video_models(api: Server, open_page):
    real = requests.get(api.base_url + "/v1/models", timeout=10).json()
    only_images = {
        "object": "list",
        "data": [m for m in real["data"] if m.get("kind") != "video"]
        + [{"id": "jimeng-video-x", "kind": "video", "needs_browser_tokens": True}],
    }
    page = open_page()
    page.route(
        "**/v1/models",
        lambda route: route.fulfill(
            json=only_images, headers={"Access-Control-Allow-Origin": "*"}
        ),
    )
    open_playground(page, api.base_url + "/")
    assert page.is_hidden("#tab-video")
    assert page.get_attribute("#form", "data-mode") == "image"


def test_video_tab_in_english_has_no_chinese(api: Server, open_page):
    page = open_page(locale="en-US")
    open_playground(page, api.base_url + "/", credentials="")
    open_video_tab(page)
    text = body_text(page).replace("中文", "")
    assert not CJK.search(text), CJK.findall(text)
    assert page.text_content("#generate") == "Generate video"
    assert page.text_content("#video-caps").startswith("4–15 s · up to")
    page.click("[data-lang='zh']")
    assert page.text_content("#generate") == "生成视频"
    assert page.text_content("#seconds-options label:first-child") == "4秒"


def test_video_on_a_phone(api: Server, open_page):
    page = open_media_page(open_page, api, **PHONE_OPTIONS)
    open_video_tab(page)
    page.select_option("#video-model", VIDEO_MODEL)
    choose(page, "video-ratio", "9:16")
    choose(page, "video-resolution", "720p")
    page.fill("#prompt", "一只柴犬在雪地里奔跑 a shiba inu running in the snow")
    assert page.evaluate("() => document.documentElement.scrollWidth - innerWidth") <= 0

    page.tap("#generate")

    page.wait_for_selector("#gallery .entry progress")
    page.wait_for_function(
        """() => {
          const top = document.querySelector('#output').getBoundingClientRect().top;
          const frame = document.querySelector('#gallery .entry .video-frame')
            .getBoundingClientRect();
          return top >= 0 && top < 40 && frame.top < innerHeight;
        }"""
    )
    assert_done(page)
    page.wait_for_function(PLAYABLE)
    (post,) = sent(page, "/v1/videos")
    assert post["json"]["size"] == "720x1280"
    box = page.locator("#gallery .entry video").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.evaluate(
        "() => document.querySelector('#output').scrollIntoView({block: 'start'})"
    )
    page.wait_for_timeout(1000)  # the player's controls settle
    screenshot(page, "playground-video-phone.png", full_page=False)


# ----------------------------------------------------------------------- misc


def test_every_new_message_is_used_in_both_languages(api: Server, page):
    open_playground(page, api.base_url + "/")
    messages = page.evaluate(
        """async () => (await import('/static/playground/messages.js')).MESSAGES"""
    )
    assert messages["zh"].keys() == messages["en"].keys()
    static = (
        Path(__file__).resolve().parents[2] / "jimeng_api" / "static" / "playground"
    )
    scripts = "".join(p.read_text() for p in static.glob("*.js"))
    keys = set(re.findall(r"""["']((?:refs|frames|video|tabs)\.\w+)["']""", scripts))
    assert keys and keys <= messages["en"].keys(), keys - messages["en"].keys()
    for key in messages["en"]:
        if key.startswith(("refs.", "frames.", "video.", "tabs.", "status.video")):
            assert CJK.search(messages["zh"][key]) or key == "refs.count", key
    assert json.dumps(messages)  # plain data
