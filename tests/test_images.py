"""POST /v1/images/generations and the generation flow, against a scripted upstream."""

from __future__ import annotations

import base64
import json

import pytest

from jimeng_api.extensions import get_generator

URLS = [f"https://p9-dreamina-sign.byteimg.com/img/{i}.jpeg" for i in range(4)]
CAT = {"prompt": "a cat"}


def draft_of(call) -> dict:
    return json.loads(json.loads(call.request.body)["draft_content"])


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
    core = draft_of(upstream.calls(upstream.GENERATE)[0])["component_list"][0][
        "abilities"
    ]["generate"]["core_param"]
    info = core["large_image_info"]
    assert (core["image_ratio"], info["width"], info["height"]) == (
        ratio,
        width,
        height,
    )
    assert info["resolution_type"] == resolution


def test_negative_prompt_alias_and_seed(client, upstream):
    upstream.generation("h1", URLS)
    body = {**CAT, "negativePrompt": "blurry", "seed": 7, "sample_strength": 0.7}
    client.post("/v1/images/generations", json=body)
    core = draft_of(upstream.calls(upstream.GENERATE)[0])["component_list"][0][
        "abilities"
    ]["generate"]["core_param"]
    assert core["negative_prompt"] == "blurry"
    assert core["seed"] == 7 and core["sample_strength"] == 0.7


def test_b64_json_downloads_each_image(client, upstream):
    upstream.generation("h1", URLS[:2])
    for i, url in enumerate(URLS[:2]):
        upstream.mock.get(url, body=b"\x89PNG-%d" % i)
    response = client.post(
        "/v1/images/generations", json={**CAT, "response_format": "b64_json"}
    )
    data = response.json["data"]
    assert [base64.b64decode(d["b64_json"]) for d in data] == [
        b"\x89PNG-0",
        b"\x89PNG-1",
    ]


def test_b64_json_refuses_urls_outside_the_allowlist(client, upstream):
    upstream.generation("h1", ["http://10.0.0.1/internal.png"])
    response = client.post(
        "/v1/images/generations", json={**CAT, "response_format": "b64_json"}
    )
    assert response.status_code == 502
    assert response.json["error"]["code"] == "image_host_not_allowed"


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


def test_poll_failures_are_retried_and_never_resubmit(client, upstream):
    upstream.submitted("h1")
    upstream.raw(upstream.HISTORY, status=502, body="<html>oops</html>")
    upstream.raw(upstream.HISTORY, status=200, body="garbage")
    upstream.record("h1", 50, URLS)
    response = client.post("/v1/images/generations", json=CAT)
    assert response.status_code == 200
    assert len(upstream.calls(upstream.GENERATE)) == 1


def test_missing_record_keeps_polling(client, upstream):
    upstream.submitted("h1")
    upstream.reply(upstream.HISTORY, {})
    upstream.record("h1", 50, URLS)
    assert client.post("/v1/images/generations", json=CAT).status_code == 200


def test_deadline_is_a_504_naming_the_record(app, upstream):
    app.config["GENERATION_TIMEOUT"] = 0.3
    app.config["POLL_INTERVAL"] = 0.05
    upstream.submitted("h-slow")
    upstream.record("h-slow", 20)
    response = app.test_client().post(
        "/v1/images/generations", json=CAT, headers={"Authorization": "Bearer s"}
    )
    assert response.status_code == 504
    assert "h-slow" in response.json["error"]["message"]
    assert response.headers["x-should-retry"] == "false"
    assert len(upstream.calls(upstream.GENERATE)) == 1


def test_failover_to_the_next_session_and_cooldown(app, upstream, monkeypatch):
    monkeypatch.setattr("random.randrange", lambda n: 0)
    upstream.reply(upstream.GENERATE, None, ret="1015", errmsg="login error")
    upstream.submitted("h1")
    upstream.record("h1", 50, URLS)
    client = app.test_client()
    headers = {"Authorization": "Bearer dead,alive"}
    response = client.post("/v1/images/generations", json=CAT, headers=headers)
    assert response.status_code == 200
    cookies = [c.request.headers["Cookie"] for c in upstream.calls(upstream.GENERATE)]
    assert "sessionid=dead;" in cookies[0] and "sessionid=alive;" in cookies[1]
    with app.app_context():
        assert get_generator().cooldowns.cooling("dead")
    upstream.submitted("h2")
    upstream.record("h2", 50, URLS)
    client.post("/v1/images/generations", json=CAT, headers=headers)
    third = upstream.calls(upstream.GENERATE)[2].request.headers["Cookie"]
    assert "sessionid=alive;" in third  # the dead one is skipped while cooling


def test_every_session_failing_gives_the_most_useful_error(app, upstream):
    upstream.reply(upstream.GENERATE, None, ret="1015", errmsg="login error")
    upstream.reply(upstream.GENERATE, None, ret="1006", errmsg="积分不足")
    upstream.reply(upstream.RECEIVE, None, ret="1014", errmsg="system busy")
    response = app.test_client().post(
        "/v1/images/generations", json=CAT, headers={"Authorization": "Bearer a,b"}
    )
    assert response.status_code in (401, 429)
    assert response.headers["x-should-retry"] == "false"


def test_daily_grant_is_claimed_once_then_resubmitted(client, upstream):
    upstream.reply(upstream.GENERATE, None, ret="1006", errmsg="积分不足")
    upstream.submitted("h1")
    upstream.reply(upstream.RECEIVE, {"receive_quota": 60, "cur_total_credits": 60})
    upstream.record("h1", 50, URLS)
    response = client.post("/v1/images/generations", json=CAT)
    assert response.status_code == 200
    assert len(upstream.calls(upstream.RECEIVE)) == 1
    assert len(upstream.calls(upstream.GENERATE)) == 2
    assert upstream.calls(upstream.CREDIT) == []  # no credit check before submitting


def test_daily_grant_is_not_claimed_twice_a_day(client, upstream):
    upstream.reply(upstream.GENERATE, None, ret="1006", errmsg="积分不足")
    upstream.reply(upstream.RECEIVE, None, ret="1014", errmsg="system busy")
    first = client.post("/v1/images/generations", json=CAT)
    second = client.post("/v1/images/generations", json=CAT)
    assert first.status_code == second.status_code == 429
    assert first.json["error"]["type"] == "insufficient_quota"
    assert len(upstream.calls(upstream.RECEIVE)) == 1


def test_models_lists_every_model(client):
    response = client.get("/v1/models")
    assert response.json["object"] == "list"
    ids = {m["id"] for m in response.json["data"]}
    assert {"jimeng-3.0", "jimeng-4.0", "jimeng-5.0", "jimeng-xl-pro"} <= ids
    assert all(m["object"] == "model" for m in response.json["data"])


def test_model_retrieve_and_unknown(client):
    assert client.get("/v1/models/jimeng-4.5").json["id"] == "jimeng-4.5"
    assert client.get("/v1/models/nope").status_code == 404
