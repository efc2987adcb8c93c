"""The playground page (GET /) in headless Debian Chromium, against the real stack.

gunicorn + gevent serves the page and the API; the API talks to the simulator
subprocess (fixtures in conftest.py). Playwright drives ``/usr/bin/chromium``
(never a downloaded browser). The module is skipped when Chromium or the
``playwright`` package is missing.

Screenshots go to tests/artifacts/; with ``JIMENG_UPDATE_SCREENSHOTS=1`` they also
replace the ones in docs/ that the READMEs show.
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Iterator

import pytest
import requests

from tests.browser.helpers import (
    ALL_IMAGES_LOADED,
    CJK,
    PHONE,
    SESSION,
    STATIC,
    TASK_SECONDS,
    assert_done,
    body_text,
    choose,
    fill_form,
    image_count,
    latest,
    open_playground,
    posts,
    require_browser,
    screenshot,
    set_stream,
    wait_for_outcome,
)
from tests.servers import Server

sync_api = require_browser()

pytestmark = pytest.mark.server


# ----------------------------------------------------------------------- generate


def test_generate_streams_each_image_into_the_history(api: Server, page):
    sent = posts(page)
    open_playground(page, api.base_url + "/")
    fill_form(page)
    page.evaluate(
        """() => {
          window.__arrivals = [];
          window.__statuses = [];
          new MutationObserver(() => {
            const n = document.querySelectorAll('#gallery img.result-image').length;
            if (n > window.__arrivals.length) window.__arrivals.push(performance.now());
            const status = document.querySelector('#status');
            window.__statuses.push(status.textContent);
            if (status.dataset.state === 'done' && !window.__doneAt)
              window.__doneAt = performance.now();
          }).observe(document.body, {subtree: true, childList: true,
                                     attributes: true, characterData: true});
        }"""
    )

    page.click("#generate")

    # the new entry is there at once, with one placeholder per image
    assert latest(page).get_attribute("data-state") == "running"
    assert latest(page).locator(".thumb.pending").count() == 4
    assert page.text_content("#generate") == "生成中…"
    assert_done(page)
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert image_count(page) == 4
    assert latest(page).get_attribute("data-state") == "done"
    arrivals, done_at, statuses = page.evaluate(
        "() => [window.__arrivals, window.__doneAt, window.__statuses]"
    )
    assert len(arrivals) >= 2, "the images should arrive one after another"
    assert arrivals[0] < arrivals[-1] - 100  # ms: not all in one final batch
    assert arrivals[0] < done_at
    # the server's progress line, localized, and the count of images so far
    assert any("即梦正在生成图片" in s for s in statuses), statuses
    assert any(re.search(r"已收到 [123]/4", s) for s in statuses), statuses
    assert re.fullmatch(r"完成 · 4 张图片 · [\d.]+ 秒", page.text_content("#status"))
    meta = latest(page).locator(".entry-meta").text_content()
    assert meta.startswith("jimeng-4.0 · 16:9 · 2K · 4 张")

    # one streamed chat request, the size on the model name; the token only to the API
    (url, body, authorization) = sent[-1]
    assert url == api.base_url + "/v1/chat/completions"
    assert body["stream"] is True and body["n"] == 4
    assert body["progress"] is True  # the server's progress text, opted in
    assert body["model"] == "jimeng-4.0:16:9:2k"
    assert authorization == f"Bearer {SESSION}"
    assert all(u.startswith(api.base_url + "/") for u, _, a in sent if a)
    stored = page.evaluate(
        "() => localStorage.getItem('jimeng-playground.credentials')"
    )
    assert stored == SESSION
    screenshot(page, "playground-zh.png")


def test_generate_without_streaming_uses_the_images_endpoint(api: Server, page):
    sent = posts(page)
    open_playground(page, api.base_url + "/")
    fill_form(page, "a lighthouse at dusk")
    set_stream(page, False)
    page.fill("#negative-prompt", "blurry")

    page.click("#generate")

    assert_done(page)
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert image_count(page) == 4
    url, body, _ = sent[-1]
    assert url == api.base_url + "/v1/images/generations"
    assert body == {
        "model": "jimeng-4.0",
        "prompt": "a lighthouse at dusk",
        "n": 4,
        "ratio": "16:9",
        "resolution": "2k",
        "negative_prompt": "blurry",
    }


def test_desktop_screenshot_in_english(api: Server, open_page):
    page = open_page(locale="en-US")
    open_playground(page, api.base_url + "/")
    page.fill("#prompt", "a lighthouse at dusk, oil painting")
    choose(page, "ratio", "1:1")
    choose(page, "n", "2")
    page.click("#generate")
    assert_done(page)
    fill_form(page, "a red fox in the snow, watercolor")
    page.click("#generate")
    assert_done(page)
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert re.fullmatch(r"Done · 4 image\(s\) · [\d.]+ s", page.text_content("#status"))
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(page, "playground.png")


# ----------------------------------------------------------------------- history


def test_history_is_kept_and_has_lightbox_copy_download_rerun_delete(
    api: Server, open_page, simulator: str
):
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    sent = posts(page)
    open_playground(page, api.base_url + "/")
    fill_form(page, "a cat astronaut")
    choose(page, "n", "2")
    page.click("#generate")
    assert_done(page)

    # IndexedDB keeps it across a reload
    page.reload()
    page.wait_for_selector("html[data-ready='true']")
    assert page.locator("#gallery .entry").count() == 1
    assert latest(page).locator(".entry-prompt").text_content() == "a cat astronaut"
    page.wait_for_function(ALL_IMAGES_LOADED)
    urls = (
        latest(page)
        .locator("img.result-image")
        .evaluate_all("els => els.map((e) => e.src)")
    )
    assert len(urls) == 2 and all(u.startswith(simulator) for u in urls)

    # lightbox: the big image, next/previous, copy URL, download, close
    latest(page).locator(".thumb").first.click()
    assert page.is_visible("#lightbox")
    assert page.get_attribute("#lightbox-image", "src") == urls[0]
    assert page.text_content("#lightbox-position") == "1 / 2"
    assert page.is_disabled("#lightbox-previous")
    page.click("#lightbox-next")
    assert page.get_attribute("#lightbox-image", "src") == urls[1]
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute("#lightbox-image", "src") == urls[0]
    page.click("#lightbox-copy")
    page.wait_for_function(
        "() => document.querySelector('#lightbox-copy').textContent === '已复制'"
    )
    assert page.evaluate("() => navigator.clipboard.readText()") == urls[0]
    # the simulator's images have no CORS headers: the image opens in a new tab
    # (a host that allows fetch gets a file download instead)
    with page.context.expect_page() as popup:
        page.click("#lightbox-download")
    assert popup.value.url == urls[0]
    popup.value.close()
    page.keyboard.press("Escape")
    assert not page.is_visible("#lightbox")

    # re-run: the same settings, a new entry on top
    before = len(sent)
    latest(page).locator("button.rerun").click()
    assert_done(page)
    assert page.locator("#gallery .entry").count() == 2
    _, body, _ = sent[before]
    assert body["messages"][0]["content"] == "a cat astronaut"
    assert body["n"] == 2 and body["model"] == "jimeng-4.0:16:9:2k"

    # delete: gone, also after a reload
    latest(page).locator("button.delete").click()
    sync_api.expect(page.locator("#gallery .entry")).to_have_count(1)
    page.reload()
    page.wait_for_selector("html[data-ready='true']")
    assert page.locator("#gallery .entry").count() == 1
    assert page.text_content("#history-count") == "1 条"


@pytest.fixture
def slow_tasks(simulator: str) -> Iterator[None]:
    """Simulated tasks of 10 s, time enough to think about cancelling."""
    config = simulator + "/__sim/config"
    requests.post(config, json={"task_seconds": 10}, timeout=10).raise_for_status()
    try:
        yield
    finally:
        requests.post(config, json={"task_seconds": TASK_SECONDS}, timeout=10)


def test_cancel_explains_itself_and_keeps_what_arrived(api: Server, page, slow_tasks):
    open_playground(page, api.base_url + "/")
    fill_form(page, "a slow river")
    page.click("#generate")
    page.wait_for_selector("#gallery img.result-image")

    page.click("#cancel")
    explanation = page.text_content("#cancel-confirm")
    assert "积分已经扣除" in explanation and "继续完成" in explanation
    page.click("#cancel-confirm-no")  # keep waiting: nothing changes
    assert not page.is_visible("#cancel-confirm")
    assert page.get_attribute("#status", "data-state") == "busy"
    page.click("#cancel")
    page.click("#cancel-confirm-yes")

    assert wait_for_outcome(page) == "cancelled"
    assert "积分已扣除" in page.text_content("#status")
    assert not page.is_visible("#error")
    assert latest(page).get_attribute("data-state") == "cancelled"
    assert 1 <= image_count(page) <= 4
    assert "积分已扣除" in latest(page).locator(".entry-note").text_content()
    assert page.is_enabled("#generate") and not page.is_visible("#cancel")


# ----------------------------------------------------------------------- language


def test_language_follows_the_browser_and_the_switch(api: Server, open_page):
    page = open_page(locale="en-US")
    open_playground(page, api.base_url + "/", credentials="")
    assert page.get_attribute("html", "lang") == "en"
    assert page.title() == "Jimeng Playground · jimeng-api"
    # English only: no Chinese anywhere but on the switch's own "中文" button
    text = body_text(page).replace("中文", "")
    assert not CJK.search(text), CJK.findall(text)
    assert page.text_content("#generate") == "Generate"
    assert page.text_content("#connection-state") == "token needed"

    page.click("[data-lang='zh']")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.text_content("#generate") == "生成"
    assert page.get_attribute("#prompt", "placeholder").startswith("一只")
    assert page.get_attribute("[data-lang='zh']", "aria-pressed") == "true"
    page.reload()  # the choice is remembered
    page.wait_for_selector("html[data-ready='true']")
    assert page.text_content("#generate") == "生成"

    page = open_page(locale="zh-TW")
    open_playground(page, api.base_url + "/")
    assert page.text_content("#generate") == "生成"
    page = open_page(locale="fr-FR")  # neither: English
    open_playground(page, api.base_url + "/")
    assert page.text_content("#generate") == "Generate"


def test_every_message_exists_in_both_languages(api: Server, page):
    open_playground(page, api.base_url + "/")
    keys = page.evaluate(
        """async () => {
          const { MESSAGES } = await import('/static/playground/messages.js');
          const used = [...document.querySelectorAll('*')].flatMap((el) =>
            [...el.attributes].filter((a) => a.name.startsWith('data-i18n'))
              .map((a) => a.value));
          return { zh: Object.keys(MESSAGES.zh), en: Object.keys(MESSAGES.en), used };
        }"""
    )
    assert sorted(keys["zh"]) == sorted(keys["en"])
    assert set(keys["used"]) <= set(keys["en"])
    # every key a script passes to t() is defined
    scripts = "".join(p.read_text() for p in (STATIC / "playground").glob("*.js"))
    called = set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", scripts))
    called |= set(re.findall(r"""["']((?:error|status|history)\.\w+)["']""", scripts))
    assert called and called <= set(keys["en"]), called - set(keys["en"])


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("zh-CN", "令牌无效或会话已过期（HTTP 401）"), ("en-US", "The token is invalid")],
)
@pytest.mark.parametrize("stream", [True, False])
def test_server_errors_are_localized(
    api: Server, open_page, locale: str, expected: str, stream: bool
):
    page = open_page(locale=locale)
    open_playground(page, api.base_url + "/", credentials="invalid-xyz")
    fill_form(page)
    if not stream:
        set_stream(page, False)

    page.click("#generate")

    assert wait_for_outcome(page) == "error"
    assert expected in page.text_content("#error .error-message")
    # the server's own words stay available, marked as such
    detail = page.text_content("#error .error-detail")
    assert "session" in detail.lower()
    assert latest(page).get_attribute("data-state") == "error"
    assert image_count(page) == 0


def test_missing_prompt_is_reported_without_a_request(api: Server, open_page):
    page = open_page(locale="en-US")
    sent = posts(page)
    open_playground(page, api.base_url + "/")

    page.click("#generate")

    assert page.text_content("#error .error-message") == "Please enter a prompt."
    assert sent == []
    page.click("[data-lang='zh']")  # an error on screen follows the switch
    assert page.text_content("#error .error-message") == "请输入提示词。"


# ----------------------------------------------------------------------- models


def offered(page) -> dict[str, list[str]]:
    return page.evaluate(
        """() => Object.fromEntries(['ratio', 'resolution', 'n'].map((name) =>
             [name, [...document.querySelectorAll(`input[name="${name}"]`)]
                      .map((i) => i.value)]))"""
    )


def test_controls_follow_the_model(api: Server, page):
    open_playground(page, api.base_url + "/")
    server_ids = [
        m["id"]
        for m in requests.get(api.base_url + "/v1/models").json()["data"]
        if m.get("kind", "image") == "image" and not m.get("video")
    ]
    options = page.eval_on_selector_all("#model option", "os => os.map((o) => o.value)")
    assert options == server_ids

    page.select_option("#model", "jimeng-4.0")
    choose(page, "n", "8")
    assert offered(page)["n"] == [str(i) for i in range(1, 9)]
    assert offered(page)["resolution"] == ["1k", "2k", "4k"]
    assert page.text_content("#model-caps") == "最多 8 张 · 最高 4K · 参考图最多 10 张"
    choose(page, "resolution", "4k")

    page.select_option("#model", "jimeng-3.0")
    assert offered(page)["n"] == ["1", "2", "3", "4"]
    assert offered(page)["resolution"] == ["1k", "2k"]
    assert page.is_checked("input[name='n'][value='4']")  # 8 no longer fits
    assert page.is_checked("input[name='resolution'][value='1k']")
    assert len(offered(page)["ratio"]) == 8


def test_the_server_accepts_the_most_the_page_offers_and_refuses_more(
    api: Server, page
):
    """For every model: the largest n and resolution offered work; one more is a 400."""
    open_playground(page, api.base_url + "/")
    caps = page.evaluate(
        """async () => {
          const { imageModels } = await import('/static/playground/models.js');
          const { data } = await (await fetch('/v1/models')).json();
          return imageModels(data);
        }"""
    )
    url = api.base_url + "/v1/images/generations"
    headers = {"Authorization": f"Bearer {SESSION}"}

    def post(model: str, n: int, resolution: str) -> requests.Response:
        body = {"model": model, "prompt": "limits", "n": n, "resolution": resolution}
        return requests.post(url, json=body, headers=headers, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(len(caps)) as pool:
        best = list(
            pool.map(lambda c: post(c["id"], c["maxN"], c["resolutions"][-1]), caps)
        )
    for cap, response in zip(caps, best, strict=True):
        assert response.status_code == 200, (cap, response.text)
        assert len(response.json()["data"]) == cap["maxN"]
        too_many = post(cap["id"], cap["maxN"] + 1, "1k")
        assert too_many.status_code == 400, cap
        assert too_many.json()["error"]["param"] == "n"
        if cap["resolutions"][-1] != "4k":
            assert post(cap["id"], 1, "4k").status_code == 400, cap


def test_extra_model_fields_from_the_server_are_used(api: Server, page):
    """Fields a newer /v1/models may carry win over the built-in rules."""
    models = {
        "object": "list",
        "data": [
            {
                "id": "jimeng-4.0",
                "max_n": 2,
                "resolutions": ["1k", "2k"],
                "default_resolution": "2k",
                "image_to_image": True,
            },
            {"id": "jimeng-video-3.0", "video": True},
            {"id": "jimeng-3.0", "ratios": ["1:1", "16:9"]},
        ],
    }
    page.route(
        "**/v1/models",
        lambda route: route.fulfill(
            json=models, headers={"Access-Control-Allow-Origin": "*"}
        ),
    )
    open_playground(page, api.base_url + "/")

    options = page.eval_on_selector_all("#model option", "os => os.map((o) => o.value)")
    assert options == ["jimeng-4.0", "jimeng-3.0"]  # the video model is not offered
    assert offered(page)["n"] == ["1", "2"]
    assert offered(page)["resolution"] == ["1k", "2k"]
    assert page.is_checked("input[name='resolution'][value='2k']")
    page.select_option("#model", "jimeng-3.0")
    assert offered(page)["ratio"] == ["1:1", "16:9"]


# ----------------------------------------------------------------------- phone


def test_phone_shows_the_result_after_tapping_generate(api: Server, open_page):
    page = open_page(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    open_playground(page, api.base_url + "/")
    fill_form(page, "一只柴犬 a shiba inu in the snow")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0
    top = page.evaluate(
        "() => document.querySelector('#output').getBoundingClientRect().top + scrollY"
    )
    assert top > PHONE["height"]  # below the form, off the first screen

    page.tap("#generate")

    page.wait_for_selector("#gallery img.result-image")
    # scrolled there by itself: the status line on top, the first image on screen
    page.wait_for_function(
        """() => {
          const top = document.querySelector('#output').getBoundingClientRect().top;
          const image = document.querySelector('#gallery .entry .thumb')
            .getBoundingClientRect();
          return top >= 0 && top < 40 && image.bottom <= innerHeight;
        }"""
    )
    assert page.evaluate("() => scrollY") > 0
    assert_done(page)
    page.wait_for_function(ALL_IMAGES_LOADED)
    screenshot(page, "playground-phone.png", full_page=False)  # what the user sees


# ----------------------------------------------------------------------- server info


def test_demo_hint_when_the_server_says_it_runs_on_the_simulator(api: Server, page):
    info = {"version": "9.9.9", "demo": True}
    page.route(
        "**/version",
        lambda route: route.fulfill(
            json=info, headers={"Access-Control-Allow-Origin": "*"}
        ),
    )
    open_playground(page, api.base_url + "/", credentials="")
    page.wait_for_selector("#demo-banner:not([hidden])")
    assert "任何令牌都可以用" in page.text_content("#demo-banner")
    assert page.text_content("#server-version") == "jimeng-api 9.9.9"

    page.click("#demo-fill")

    assert page.input_value("#credentials")
    assert page.text_content("#connection-state") == "已设置令牌"


def test_no_demo_hint_against_a_server_that_does_not_say_so(api: Server, page):
    open_playground(page, api.base_url + "/")
    response = requests.get(api.base_url + "/version", timeout=10)
    page.wait_for_load_state("networkidle")
    demo = response.ok and response.json().get("demo") is True
    assert page.is_visible("#demo-banner") == demo


# ----------------------------------------------------------------------- misc


def test_check_credits_shows_balances_and_per_session_errors(api: Server, page):
    open_playground(page, api.base_url + "/", credentials=f"{SESSION},invalid-abc")

    page.click("#check-credits")

    page.wait_for_selector("#credits li")
    assert page.locator("#credits li").count() == 2
    ok = page.text_content("#credits li.ok")
    assert re.search(r"\d+ 积分", ok), ok
    bad = page.text_content("#credits li.bad")
    assert "令牌无效" in bad, bad
    text = page.text_content("#credits")
    assert SESSION not in text and "invalid-abc" not in text  # masked by the server


@pytest.mark.parametrize("stream", [True, False])
def test_page_from_another_origin_uses_the_api_via_cors(
    api: Server, other_origin: str, page, stream: bool
):
    sent = posts(page)
    open_playground(
        page, other_origin + "/static/playground/index.html", api_base=api.base_url
    )
    fill_form(page, "cross-origin cat")
    set_stream(page, stream)

    page.click("#generate")

    assert_done(page)
    assert image_count(page) == 4
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert sent and all(url.startswith(api.base_url + "/") for url, _, a in sent if a)


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
