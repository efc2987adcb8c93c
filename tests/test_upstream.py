"""JimengClient: signing, the request it sends, envelopes, the ret-code table
(with its per-endpoint overrides), batched polls, lookups and retries."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from jimeng_api import errors
from jimeng_api.upstream import (
    AlreadyClaimedError,
    AmbiguousSubmitError,
    ParallelLimitError,
    sign,
)
from jimeng_api.upstream.tokens import web_identity
from tests.conftest import raw_record
from tests.factories import draft

AFFIXES = ("9e2c", "11ac")
DRAFT = draft()
URLS = [f"https://p9-dreamina-sign.byteimg.com/img/{i}.jpeg" for i in range(4)]


@pytest.fixture
def jimeng(app):
    """The app's JimengClient."""
    return app.extensions["jimeng"]["client"]


def submit_id() -> str:
    return str(uuid.uuid4())


@pytest.mark.parametrize(
    ("path", "version", "device_time", "expected"),
    [
        ("/commerce/v1/benefits/user_credit", "5.8.0", 1733966964,
         "f3dbb824b378abea7c03cbb152b3a365"),
        ("/mweb/v1/aigc_draft/generate", "8.4.0", 1771893826,
         "19724735691862919106b8c4808a6ce7"),
        ("/mweb/v1/get_history_by_ids", "8.4.0", 1771893831,
         "656c1e00cf94dfd5bcfaf031e32493e4"),
        ("/commerce/v1/benefits/user_credit_history", "8.4.0", 1771893831,
         "e689d5fa536721dee8945eaa6efb01b0"),
        ("/mweb/v1/aigc_draft/generate", "5.8.0", 1700000000,
         "ae3b32f5eac9141aae9ff491a3bd4c7c"),
        ("/commerce/v1/benefits/credit_receive", "5.8.0", 1700000000,
         "71879a52ca8f167d30c516cc0e902774"),
        ("/passport/account/info/v2", "5.8.0", 1700000000,
         "0c940359032a9b46ee792a23c0b1d22b"),
        ("/mweb/v1/get_upload_token", "5.8.0", 1700000000,
         "73778fc3d172e49a6459181a5cdf21f3"),
    ],
)  # fmt: skip
def test_sign_matches_the_protocol_vectors(path, version, device_time, expected):
    assert sign(path, device_time, "7", version, AFFIXES) == expected


# --- the generate call --------------------------------------------------------


def test_generate_request_is_signed_with_browser_headers_cookie_and_query(
    jimeng, upstream
):
    upstream.submitted("123")
    sid = submit_id()
    assert jimeng.submit("sess-abc", DRAFT, sid) == "123"

    request = upstream.calls(upstream.GENERATE)[0].request
    h = request.headers
    assert h["Appid"] == "513695" and h["Appvr"] == "8.4.0" and h["Pf"] == "7"
    assert h["Sign-Ver"] == "1"
    expected = sign(
        "/mweb/v1/aigc_draft/generate", int(h["Device-Time"]), "7", "8.4.0", AFFIXES
    )
    assert h["Sign"] == expected
    cookies = dict(part.split("=", 1) for part in h["Cookie"].split("; "))
    assert cookies["sessionid"] == cookies["sid_tt"] == "sess-abc"
    web_id, user_id = web_identity("sess-abc")
    assert cookies["_tea_web_id"] == web_id and cookies["uid_tt"] == user_id
    query = parse_qs(urlsplit(request.url).query)
    assert query["aid"] == ["513695"] and query["region"] == ["cn"]
    assert query["webId"] == [web_id] and query["da_version"] == ["3.3.28"]
    assert "X-Jimeng-Web-Id" not in h
    assert json.loads(request.body)["submit_id"] == sid


def test_generate_body_carries_strings_and_gen_count(jimeng, upstream):
    upstream.submitted("1")
    jimeng.submit("s", draft(n=2), submit_id())
    body = json.loads(upstream.calls(upstream.GENERATE)[0].request.body)
    assert isinstance(body["draft_content"], str)
    assert isinstance(body["metrics_extra"], str)
    content = json.loads(body["draft_content"])
    abilities = content["component_list"][0]["abilities"]
    assert abilities["gen_option"]["gen_count"] == 2
    core = abilities["generate"]["core_param"]
    assert core["model"] == body["extend"]["root_model"] == DRAFT.model_key
    assert core["seed"] == 42 and core["prompt"] == "a cat"
    scene = json.loads(json.loads(body["metrics_extra"])["sceneOptions"])[0]
    assert scene["benefitCount"] == 2 and scene["modelReqKey"] == DRAFT.model_key


# --- other endpoints ----------------------------------------------------------


def test_commerce_calls_have_no_query_and_parse_credits(jimeng, upstream):
    upstream.reply(
        upstream.CREDIT,
        {"credit": {"gift_credit": 16, "purchase_credit": 2, "vip_credit": 1}},
        svr_time=1768098375,
        log_id="x",
    )
    points = jimeng.credits("s")
    assert points == {
        "giftCredit": 16, "purchaseCredit": 2, "vipCredit": 1, "totalCredit": 19
    }  # fmt: skip
    request = upstream.calls(upstream.CREDIT)[0].request
    assert "?" not in request.url
    assert request.headers["Lan"] == "ZH"
    assert request.headers["Referer"].endswith("/ai-tool/image/generate")


def test_receive_credits_sends_the_time_zone(jimeng, upstream):
    upstream.reply(upstream.RECEIVE, {"receive_quota": 60, "cur_total_credits": 60})
    assert jimeng.receive_credits("s")["receive_quota"] == 60
    request = upstream.calls(upstream.RECEIVE)[0].request
    assert json.loads(request.body) == {"time_zone": "Asia/Shanghai"}
    assert "?" not in request.url


def test_credits_without_a_credit_object_is_an_upstream_error(jimeng, upstream):
    upstream.reply(upstream.CREDIT, {"nothing": True})
    with pytest.raises(errors.UpstreamError, match="no credit"):
        jimeng.credits("s")


def test_passport_envelope_has_no_ret(jimeng, upstream):
    upstream.raw(upstream.ACCOUNT, json={"data": {"user_id": 1}, "message": "success"})
    assert jimeng.is_live("s") is True
    request = upstream.calls(upstream.ACCOUNT)[0].request
    assert "account_sdk_source=web" in request.url and request.body is None


def test_passport_error_is_not_live(jimeng, upstream):
    body = {"data": {"error_code": 13, "description": "expired"}, "message": "error"}
    upstream.raw(upstream.ACCOUNT, json=body)
    assert jimeng.is_live("s") is False


def test_history_polls_several_records_in_one_call(jimeng, upstream):
    upstream.reply(
        upstream.HISTORY,
        {
            "h1": raw_record(45, URLS[:2]),
            "h2": raw_record(20, queue_info={"queue_idx": 4, "queue_length": 9}),
            "unasked": raw_record(50, URLS),
            "h4": "not a record",
        },
    )
    records = jimeng.history("s", ["h1", "h2", "h3", "h4"])
    assert set(records) == {"h1", "h2"}  # unknown (yet) ids are missing
    assert records["h1"].urls == URLS[:2] and records["h1"].stage == "finishing"
    assert records["h2"].stage == "queued" and records["h2"].queue.position == 4
    [call] = upstream.calls(upstream.HISTORY)
    body = json.loads(call.request.body)
    assert body["history_ids"] == ["h1", "h2", "h3", "h4"]
    assert body["http_common_info"] == {"aid": 513695}
    assert body["image_info"]["format"] == "webp"
    assert call.request.headers["X-Platform"] == "pc"


def test_find_submissions_looks_up_by_submit_id(jimeng, upstream):
    a, b, c = submit_id(), submit_id(), submit_id()
    upstream.reply(
        upstream.HISTORY,
        {
            a: {"history_record_id": "111"},
            b: {"task": {"history_id": 222}},
            c: {"nothing": "here"},
        },
    )
    assert jimeng.find_submissions("s", [a, b, c]) == {a: "111", b: "222"}
    body = json.loads(upstream.calls(upstream.HISTORY)[0].request.body)
    assert body == {"submit_ids": [a, b, c]}


# --- the ret-code table -----------------------------------------------------------


@pytest.mark.parametrize(
    ("ret", "error_class", "status", "code", "retryable"),
    [
        ("1015", errors.SessionExpiredError, 401, "session_expired", False),
        ("1006", errors.InsufficientQuotaError, 429, "insufficient_quota", False),
        ("5000", errors.InsufficientQuotaError, 429, "insufficient_quota", False),
        ("1010", errors.RateLimitError, 429, "rate_limit_exceeded", None),
        ("1310", ParallelLimitError, 429, "exceed_model_parallel_max", True),
        ("2061", errors.NotFoundError, 404, "model_retired", None),
        ("4001", errors.ContentFilteredError, 400, "content_policy_violation", False),
        ("2038", errors.ContentFilteredError, 400, "content_policy_violation", False),
        ("1019", errors.PermissionDeniedError, 403, "risk_control", False),
        ("4013", errors.PermissionDeniedError, 403, "risk_control", False),
        ("1018", errors.PermissionDeniedError, 403, "account_punished", False),
        ("-4", errors.PermissionDeniedError, 403, "risk_control", False),
        ("3018", errors.UpstreamError, 502, "client_outdated", None),
        ("1014", errors.UpstreamError, 502, "system_busy", None),
        ("1002", errors.UpstreamError, 502, "upstream_rejected_request", None),
        ("34010100", errors.UpstreamError, 502, "upstream_error", None),
        (1006, errors.InsufficientQuotaError, 429, "insufficient_quota", False),
    ],
)
def test_ret_codes_map_to_errors(
    jimeng, upstream, ret, error_class, status, code, retryable
):
    upstream.reply(upstream.CREDIT, None, ret=ret, errmsg="nope")
    with pytest.raises(error_class) as caught:
        jimeng.credits("s")
    error = caught.value
    assert type(error) is error_class
    assert (error.status_code, error.code, error.retryable) == (status, code, retryable)
    assert str(ret) in error.message


def test_1014_on_credit_receive_means_already_claimed(jimeng, upstream):
    upstream.reply(upstream.RECEIVE, None, ret="1014", errmsg="system busy")
    with pytest.raises(AlreadyClaimedError) as caught:
        jimeng.receive_credits("s")
    assert caught.value.code == "already_claimed"
    assert caught.value.retryable is False and caught.value.status_code == 429
    upstream.reply(upstream.GENERATE, None, ret="1014", errmsg="system busy")
    with pytest.raises(errors.UpstreamError) as elsewhere:
        jimeng.submit("s", DRAFT, submit_id())
    assert type(elsewhere.value) is errors.UpstreamError  # not "already claimed"
    assert elsewhere.value.code == "system_busy"


@pytest.mark.parametrize(
    ("ret", "error_class"),
    [
        ("1310", ParallelLimitError),
        ("2061", errors.NotFoundError),
        ("4001", errors.ContentFilteredError),
        ("2038", errors.ContentFilteredError),
        ("1015", errors.SessionExpiredError),
    ],
)
def test_a_refused_submit_is_sent_once(jimeng, upstream, ret, error_class):
    upstream.reply(upstream.GENERATE, None, ret=ret, errmsg="no")
    with pytest.raises(error_class):
        jimeng.submit("s", DRAFT, submit_id())
    assert len(upstream.calls(upstream.GENERATE)) == 1
    assert upstream.calls(upstream.HISTORY) == []


def test_content_refusal_at_submit_is_a_400_not_retried_nor_failed_over(app, upstream):
    upstream.reply(upstream.GENERATE, None, ret="2038", errmsg="risky prompt")
    response = app.test_client().post(
        "/v1/images/generations",
        json={"prompt": "a cat"},
        headers={"Authorization": "Bearer acct-a,acct-b"},
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "content_policy_violation"
    assert response.headers["x-should-retry"] == "false"
    assert len(upstream.calls(upstream.GENERATE)) == 1  # the next account: no
    assert upstream.calls(upstream.RECEIVE) == []  # never a reason to claim


def test_a_retired_model_is_a_404(client, upstream):
    upstream.reply(upstream.GENERATE, None, ret="2061", errmsg="model offline")
    response = client.post("/v1/images/generations", json={"prompt": "a cat"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "model_retired"


def test_numeric_zero_ret_is_success(jimeng, upstream):
    upstream.reply(upstream.CREDIT, {"credit": {"gift_credit": 1}}, ret=0)
    assert jimeng.credits("s")["totalCredit"] == 1


def test_a_body_without_ret_is_retried_then_a_502(jimeng, upstream):
    upstream.raw(upstream.CREDIT, json={"data": {}})
    with pytest.raises(errors.UpstreamError) as caught:
        jimeng.credits("s")
    assert caught.value.status_code == 502
    assert len(upstream.calls(upstream.CREDIT)) == 1 + jimeng.retries


def test_upstream_message_never_echoes_the_session_id(jimeng, upstream):
    upstream.reply(
        upstream.CREDIT, None, ret="1234", errmsg="bad cookie sessionid=s3cr3t"
    )
    with pytest.raises(errors.UpstreamError) as caught:
        jimeng.credits("s3cr3t")
    assert "s3cr3t" not in caught.value.message


# --- retries --------------------------------------------------------------------


def test_safe_calls_retry_5xx_and_non_json(jimeng, upstream):
    upstream.raw(upstream.CREDIT, status=502, body="<html>bad gateway</html>")
    upstream.raw(upstream.CREDIT, status=200, body="not json")
    upstream.reply(upstream.CREDIT, {"credit": {"gift_credit": 3}})
    assert jimeng.credits("s")["totalCredit"] == 3
    assert len(upstream.calls(upstream.CREDIT)) == 3


def test_safe_calls_give_up_after_the_retries(jimeng, upstream):
    upstream.raw(upstream.CREDIT, status=503, body="<html>down</html>")
    with pytest.raises(errors.UpstreamError) as caught:
        jimeng.credits("s")
    assert caught.value.status_code == 502
    assert len(upstream.calls(upstream.CREDIT)) == 1 + jimeng.retries


def test_timeouts_become_504(jimeng, upstream):
    upstream.raw(upstream.CREDIT, body=requests.ReadTimeout("slow"))
    with pytest.raises(errors.UpstreamTimeoutError):
        jimeng.credits("s")


def test_retries_stop_at_the_deadline(jimeng, upstream):
    jimeng.backoff = 1.0
    upstream.raw(upstream.CREDIT, status=503, body="<html>down</html>")
    started = time.monotonic()
    with pytest.raises(errors.UpstreamError):
        jimeng._call(upstream.CREDIT, "s", deadline=time.monotonic() + 0.2)
    assert time.monotonic() - started < 1.0
    assert len(upstream.calls(upstream.CREDIT)) == 1


@pytest.mark.parametrize(
    ("reply", "answered"),
    [
        ({"status": 502, "body": "<html>bad gateway</html>"}, True),
        ({"status": 200, "body": "upstream connect error"}, True),
        ({"status": 200, "json": ["not", "an", "object"]}, True),
        ({"body": requests.ReadTimeout("slow")}, False),
        ({"body": requests.ConnectionError("connection reset by peer")}, False),
    ],
)
def test_a_submit_that_may_have_arrived_is_reported_never_repeated(
    jimeng, upstream, reply, answered
):
    upstream.raw(upstream.GENERATE, **reply)
    upstream.submitted("never")
    with pytest.raises(AmbiguousSubmitError) as caught:
        jimeng.submit("s", DRAFT, submit_id())
    assert caught.value.answered is answered
    assert caught.value.retryable is False
    assert len(upstream.calls(upstream.GENERATE)) == 1
    assert upstream.calls(upstream.HISTORY) == []  # looking up is the caller's job


@pytest.mark.parametrize(
    "data", [None, {}, {"aigc_data": None}, {"aigc_data": {"history_record_id": ""}}]
)
def test_an_accepted_submit_without_a_record_id_is_ambiguous(jimeng, upstream, data):
    upstream.reply(upstream.GENERATE, data)
    with pytest.raises(AmbiguousSubmitError, match="no record id") as caught:
        jimeng.submit("s", DRAFT, submit_id())
    assert caught.value.answered is True
    assert len(upstream.calls(upstream.GENERATE)) == 1


def test_connect_errors_on_submit_are_retried(jimeng, upstream):
    refused = requests.ConnectionError(
        MaxRetryError(None, "/", NewConnectionError(None, "refused"))
    )
    upstream.raw(upstream.GENERATE, body=refused)
    upstream.submitted("9")
    assert jimeng.submit("s", DRAFT, submit_id()) == "9"
    assert len(upstream.calls(upstream.GENERATE)) == 2
    assert len(upstream.calls(upstream.HISTORY)) == 0


def test_a_submit_that_never_connects_gives_up_with_a_retryable_error(jimeng, upstream):
    upstream.raw(upstream.GENERATE, body=requests.ConnectTimeout("no route"))
    with pytest.raises(errors.UpstreamTimeoutError) as caught:
        jimeng.submit("s", DRAFT, submit_id())
    assert not isinstance(caught.value, AmbiguousSubmitError)
    assert caught.value.retryable is None  # nothing was sent: a retry is safe
    assert len(upstream.calls(upstream.GENERATE)) == 1 + jimeng.retries


def test_insufficient_quota_is_not_retryable(jimeng, upstream):
    upstream.reply(upstream.GENERATE, None, ret="1006", errmsg="积分不足")
    with pytest.raises(errors.InsufficientQuotaError) as caught:
        jimeng.submit("s", DRAFT, submit_id())
    assert caught.value.retryable is False
    assert len(upstream.calls(upstream.GENERATE)) == 1


# --- x-should-retry once a generation was submitted --------------------------------


def _content_failure(upstream):
    upstream.submitted("h1")
    upstream.record("h1", 30, fail_code="2038")


def _overloaded(upstream):
    upstream.submitted("h1")
    upstream.record("h1", 30, fail_code="1017")


def _dry_mid_generation(upstream):
    upstream.submitted("h1")
    upstream.record("h1", 30, fail_code="2039")


def _no_images(upstream):
    upstream.submitted("h1")
    upstream.record("h1", 50)


def _polls_keep_failing(upstream):
    upstream.submitted("h1")
    upstream.reply(upstream.HISTORY, None, ret="1015", errmsg="login error")


def _unconfirmed(upstream):
    upstream.raw(upstream.GENERATE, body=requests.ReadTimeout("slow"))
    upstream.reply(upstream.HISTORY, {})


@pytest.mark.parametrize(
    ("script", "status", "code"),
    [
        (_content_failure, 400, "content_policy_violation"),
        (_overloaded, 502, "upstream_overloaded"),
        (_dry_mid_generation, 429, "insufficient_quota"),
        (_no_images, 502, "generation_failed"),
        (_polls_keep_failing, 504, "timeout"),
        (_unconfirmed, 504, "submit_unconfirmed"),
    ],
)
def test_errors_after_a_submit_say_do_not_retry(
    make_app, upstream, script, status, code
):
    app = make_app(GENERATION_TIMEOUT=0.5)
    app.extensions["jimeng"]["generations"].submitter.grace = 0.1
    script(upstream)
    response = app.test_client().post(
        "/v1/images/generations",
        json={"prompt": "a cat"},
        headers={"Authorization": "Bearer s"},
    )
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["X-Task-Id"].startswith("task_")
    assert len(upstream.calls(upstream.GENERATE)) == 1
