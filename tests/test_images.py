"""POST /v1/images/generations and the generation flow, against a scripted upstream."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import raw_record

URLS = [f"https://p9-dreamina-sign.byteimg.com/img/{i}.jpeg" for i in range(4)]
MORE = [f"https://p9-dreamina-sign.byteimg.com/img/{i}.jpeg" for i in range(4, 8)]
CAT = {"prompt": "a cat"}
PNG = b"\x89PNG\r\n\x1a\n"


def draft_of(call) -> dict:
    return json.loads(json.loads(call.request.body)["draft_content"])


def core_of(call) -> dict:
    return draft_of(call)["component_list"][0]["abilities"]["generate"]["core_param"]


def test_timeline_20_42_45_50_returns_every_image(client, upstream):
    upstream.submitted("h1")
    upstream.record("h1", 20)
    upstream.record("h1", 42)
    upstream.record("h1", 45, URLS[:1])
    upstream.record("h1", 45, URLS[:3])
    upstream.record("h1", 50, URLS)

    response = client.post("/v1/images/generations", json=CAT)

    assert response.status_code == 200
    assert response.json["data"] == [{"url": u} for u in URLS]
    assert isinstance(response.json["created"], int)
    assert response.headers["X-Task-Id"].startswith("task_")
    assert len(upstream.calls(upstream.HISTORY)) == 5
    assert len(upstream.calls(upstream.GENERATE)) == 1


def test_status_45_with_the_expected_count_finishes_without_waiting_for_50(
    client, upstream
):
    upstream.submitted("h1")
    upstream.record("h1", 45, URLS[:2])
    response = client.post("/v1/images/generations", json={**CAT, "n": 2})
    assert len(response.json["data"]) == 2
    assert len(upstream.calls(upstream.HISTORY)) == 1


def test_n_becomes_gen_count(client, upstream):
    upstream.submitted("h1")
    upstream.record("h1", 50, URLS[:3])
    client.post("/v1/images/generations", json={**CAT, "n": 3, "model": "jimeng-4.0"})
    draft = draft_of(upstream.calls(upstream.GENERATE)[0])
    abilities = draft["component_list"][0]["abilities"]
    assert abilities["gen_option"]["gen_count"] == 3
    assert abilities["generate"]["core_param"]["model"] == "high_aes_general_v40"


def test_without_n_the_upstream_default_applies(client, upstream):
    upstream.generation("h1", URLS)
    client.post("/v1/images/generations", json=CAT)
    draft = draft_of(upstream.calls(upstream.GENERATE)[0])
    assert "gen_count" not in draft["component_list"][0]["abilities"]["gen_option"]


@pytest.mark.parametrize(
    ("fields", "ratio", "width", "height", "resolution"),
    [
        ({}, 1, 1024, 1024, "1k"),
        ({"size": "1024x576"}, 3, 1024, 576, "1k"),
        ({"ratio": "16:9", "resolution": "2k"}, 3, 2560, 1440, "2k"),
        ({"ratio": "9:16", "resolution": "4k", "model": "jimeng-4.0"}, 105, 2880, 5120,
         "4k"),
        ({"width": 1280, "height": 720}, 3, 1280, 720, "1k"),
        ({"size": "2K", "model": "jimeng-5.0"}, 1, 2048, 2048, "2k"),
    ],
)  # fmt: skip
def test_size_and_ratio_reach_the_draft(
    client, upstream, fields, ratio, width, height, resolution
):
    upstream.generation("h1", URLS)
    response = client.post("/v1/images/generations", json={**CAT, **fields})
    assert response.status_code == 200, response.json
    core = core_of(upstream.calls(upstream.GENERATE)[0])
    info = core["large_image_info"]
    assert (core["image_ratio"], info["width"], info["height"]) == (
        ratio,
        width,
        height,
    )
    assert info["resolution_type"] == resolution


def test_the_size_table_is_configurable(make_app, upstream):
    app = make_app(JIMENG_SIZE_TABLE=("16:9/2k=2048x1152", "1:1/1k=1328x1328"))
    upstream.generation("h1", URLS)
    client = app.test_client()
    headers = {"Authorization": "Bearer test-session-1"}
    for fields in ({"ratio": "16:9", "resolution": "2k"}, {}):
        response = client.post(
            "/v1/images/generations", json={**CAT, **fields}, headers=headers
        )
        assert response.status_code == 200, response.json
    sent = [core_of(call) for call in upstream.calls(upstream.GENERATE)]
    sizes = [
        (c["large_image_info"]["width"], c["large_image_info"]["height"]) for c in sent
    ]
    assert sizes == [(2048, 1152), (1328, 1328)]
    chat = client.post(
        "/v1/chat/completions",
        json={
            "model": "jimeng-4.0:16:9:2k",
            "messages": [{"role": "user", "content": "a cat"}],
        },
        headers=headers,
    )
    assert chat.status_code == 200, chat.json
    info = core_of(upstream.calls(upstream.GENERATE)[-1])["large_image_info"]
    assert (info["width"], info["height"]) == (2048, 1152)  # model suffixes too


def test_a_malformed_quality_tier_setting_refuses_to_start():
    from config import TestingConfig
    from jimeng_api import create_app

    with pytest.raises(ValueError, match="IMAGE_QUALITY_TIERS"):
        create_app(TestingConfig, overrides={"IMAGE_QUALITY_TIERS": "low:8k"})


@pytest.mark.parametrize(
    "entry", ["16:9=2048x1152", "16:9/8k=2048x1152", "5:4/1k=1280x1024", "1:1/1k=64x64"]
)
def test_a_malformed_size_table_refuses_to_start(entry):
    from config import TestingConfig
    from jimeng_api import create_app

    with pytest.raises(ValueError, match="JIMENG_SIZE_TABLE"):
        create_app(TestingConfig, overrides={"JIMENG_SIZE_TABLE": (entry,)})


def test_negative_prompt_alias_and_seed(client, upstream):
    upstream.generation("h1", URLS)
    body = {**CAT, "negativePrompt": "blurry", "seed": 7, "sample_strength": 0.7}
    client.post("/v1/images/generations", json=body)
    core = core_of(upstream.calls(upstream.GENERATE)[0])
    assert core["negative_prompt"] == "blurry"
    assert core["seed"] == 7 and core["sample_strength"] == 0.7


def test_draft_versions_follow_the_model_generation(client, upstream):
    upstream.generation("h1", URLS)
    upstream.generation("h2", URLS)
    client.post("/v1/images/generations", json={**CAT, "model": "jimeng-4.0"})
    client.post("/v1/images/generations", json={**CAT, "model": "jimeng-3.0"})
    modern, legacy = (draft_of(c) for c in upstream.calls(upstream.GENERATE))
    assert modern["version"] == "3.3.9" and legacy["version"] == "3.0.2"


# --- b64_json: the images are fetched (by the real fetcher) ---------------------------


class _Images(BaseHTTPRequestHandler):
    """An image CDN: /img/N.png is an image; /503/… fails, /text/… is a page."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        status, kind, body = 200, "image/png", b"<html>not an image</html>"
        if self.path.startswith("/503/"):
            status, kind, body = 503, "text/plain", b"busy"
        elif self.path.startswith("/img/"):
            body = PNG + f"-{self.path.rsplit('/', 1)[-1].split('.')[0]}".encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def image_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def b64_generation(make_app, upstream, urls):
    app = make_app(
        IMAGE_FETCH_ALLOWED_HOSTS=("127.0.0.1",),
        FETCH_ALLOW_PRIVATE_HOSTS=("127.0.0.1",),
    )
    upstream.submitted("h1")
    upstream.record("h1", 50, urls)
    return app.test_client().post(
        "/v1/images/generations",
        json={**CAT, "response_format": "b64_json"},
        headers={"Authorization": "Bearer s"},
    )


def test_b64_json_downloads_each_image(make_app, upstream, image_host):
    urls = [f"{image_host}/img/{i}.png" for i in range(2)]
    response = b64_generation(make_app, upstream, urls)
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert [base64.b64decode(d["b64_json"]) for d in data] == [
        PNG + b"-0",
        PNG + b"-1",
    ]
    assert all(set(d) == {"b64_json"} for d in data)


@pytest.mark.parametrize("path", ["503", "text"])
def test_b64_json_images_that_cannot_be_downloaded_come_as_urls(
    make_app, upstream, monkeypatch, image_host, path
):
    """They were paid for: a failed download must not lose them."""
    import jimeng_api.results

    monkeypatch.setattr(jimeng_api.results, "RENDER_ATTEMPTS", 2)  # one 1 s pause
    urls = [f"{image_host}/{path}/{i}.png" for i in range(2)]
    response = b64_generation(make_app, upstream, urls)
    assert response.status_code == 200, response.json
    assert response.json["data"] == [{"url": url} for url in urls]
    assert "delivered as URLs" in response.headers["X-Jimeng-Notice"]


def test_b64_json_refuses_urls_outside_the_allowlist(client, upstream):
    upstream.generation("h1", ["http://10.0.0.1/internal.png"])
    response = client.post(
        "/v1/images/generations", json={**CAT, "response_format": "b64_json"}
    )
    assert response.status_code == 502
    assert response.json["error"]["code"] == "image_host_not_allowed"
    assert response.headers["x-should-retry"] == "false"  # it was paid for
    assert "internal.png" not in response.json["error"]["message"]


# --- refused before anything is submitted ---------------------------------------------


def test_unknown_model_is_refused_before_submitting(client, upstream):
    response = client.post("/v1/images/generations", json={**CAT, "model": "dall-e-3"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "model_not_found"
    assert "jimeng-4.0" in response.json["error"]["message"]
    assert upstream.calls(upstream.GENERATE) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 5000}, "prompt"),
        ({**CAT, "n": 0}, "n"),
        ({**CAT, "n": "2"}, "n"),
        ({**CAT, "n": 9}, "n"),
        ({**CAT, "n": 5, "model": "jimeng-3.0"}, "n"),
        ({**CAT, "n": 9, "model": "jimeng-4.0"}, "n"),
        ({**CAT, "size": "banana"}, "size"),
        ({**CAT, "width": -5, "height": 10}, "width"),
        ({**CAT, "sample_strength": 3}, "sample_strength"),
        ({**CAT, "response_format": "png"}, "response_format"),
        ({**CAT, "seed": 2**40}, "seed"),
        ({**CAT, "ratio": "5:7"}, "ratio"),
    ],
)
def test_invalid_bodies_are_400_naming_the_param(client, upstream, body, param):
    response = client.post("/v1/images/generations", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == param
    assert upstream.calls(upstream.GENERATE) == []


def test_more_than_four_images_are_submitted_in_parts_of_four(client, upstream):
    """The web client submits 1-4 images at a time: 6 is 4 + 2, one answer."""
    upstream.submitted("h1")
    upstream.submitted("h2")
    history = upstream.history()
    history.add("h1", raw_record(50, URLS))
    history.add("h2", raw_record(50, MORE[:2]))
    response = client.post(
        "/v1/images/generations", json={**CAT, "n": 6, "model": "jimeng-4.0"}
    )
    assert response.status_code == 200, response.json
    assert response.json["data"] == [{"url": u} for u in URLS + MORE[:2]]
    assert "X-Jimeng-Partial" not in response.headers
    calls = upstream.calls(upstream.GENERATE)
    counts = [
        draft_of(c)["component_list"][0]["abilities"]["gen_option"]["gen_count"]
        for c in calls
    ]
    assert counts == [4, 2]
    seeds = [core_of(c)["seed"] for c in calls]
    assert seeds[1] == seeds[0] + 1  # two different pictures, not one twice
    ids = [json.loads(c.request.body)["submit_id"] for c in calls]
    assert len(set(ids)) == 2


def test_a_part_that_fails_leaves_the_others_images(client, upstream):
    upstream.submitted("h1")
    upstream.submitted("h2")
    history = upstream.history()
    history.add("h1", raw_record(50, URLS))
    history.add("h2", raw_record(30, fail_code="2038"))
    response = client.post(
        "/v1/images/generations", json={**CAT, "n": 8, "model": "jimeng-4.0"}
    )
    assert response.status_code == 200, response.json
    assert len(response.json["data"]) == 4
    assert response.headers["X-Jimeng-Partial"] == "4/8"


def test_three_models_make_at_most_four(client, upstream):
    refused = client.post(
        "/v1/images/generations", json={**CAT, "n": 5, "model": "jimeng-3.0"}
    )
    assert refused.status_code == 400
    assert "at most 4" in refused.json["error"]["message"]
    assert upstream.calls(upstream.GENERATE) == []


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[1,2]", b'{"prompt": NaN}', b"\xff\xfe", b"[" * 5000 + b"]" * 5000],
)
def test_malformed_json_is_a_400(client, data):
    response = client.post(
        "/v1/images/generations", data=data, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer   ", "Basic abc", "Bearer a;b=c", "Bearer ,,"],
)
def test_missing_or_malformed_authorization_is_401(app, header):
    headers = {"Authorization": header} if header is not None else {}
    response = app.test_client().post(
        "/v1/images/generations", json=CAT, headers=headers
    )
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_api_key"


def test_bearer_scheme_is_case_insensitive_and_tokens_trimmed(app, upstream):
    upstream.generation("h1", URLS)
    response = app.test_client().post(
        "/v1/images/generations",
        json=CAT,
        headers={"Authorization": "bearer  tok-1 , , "},
    )
    assert response.status_code == 200
    cookie = upstream.calls(upstream.GENERATE)[0].request.headers["Cookie"]
    assert "sessionid=tok-1;" in cookie


# --- failures after the submit --------------------------------------------------------


def test_content_filter_submits_exactly_once(client, upstream):
    upstream.submitted("h1")
    upstream.record("h1", 20)
    upstream.record("h1", 30, fail_code="2038")
    response = client.post("/v1/images/generations", json=CAT)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "content_policy_violation"
    assert response.headers["x-should-retry"] == "false"
    assert len(upstream.calls(upstream.GENERATE)) == 1


def test_other_fail_codes_are_generation_failures(client, upstream):
    upstream.submitted("h1")
    upstream.record("h1", 30, fail_code="9999")
    response = client.post("/v1/images/generations", json=CAT)
    assert response.status_code == 502
    assert response.json["error"]["code"] == "generation_failed"
    assert response.headers["x-should-retry"] == "false"


def test_status_10_without_images_is_a_failure_not_an_empty_success(client, upstream):
    upstream.submitted("h1")
    upstream.record("h1", 10)
    response = client.post("/v1/images/generations", json=CAT)
    assert response.status_code == 502
    assert response.headers["x-should-retry"] == "false"


# --- /v1/models -----------------------------------------------------------------------


def test_models_lists_every_model(client):
    response = client.get("/v1/models")
    assert response.json["object"] == "list"
    ids = {m["id"] for m in response.json["data"]}
    assert {"jimeng-3.0", "jimeng-4.0", "jimeng-5.0", "jimeng-xl-pro"} <= ids
    assert all(m["object"] == "model" for m in response.json["data"])


def test_model_retrieve_and_unknown(client):
    assert client.get("/v1/models/jimeng-4.5").json["id"] == "jimeng-4.5"
    assert client.get("/v1/models/nope").status_code == 404
