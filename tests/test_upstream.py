"""JimengClient: signing, the request it sends, envelopes, error table, retries."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from jimeng_api import errors
from jimeng_api.extensions import get_generator
from jimeng_api.upstream import sign, web_identity
from tests.factories import draft

AFFIXES = ("9e2c", "11ac")
DRAFT = draft()


@pytest.fixture
def client(app):
    return get_generator_client(app)


def get_generator_client(app):
    with app.app_context():
        return get_generator().client


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


def test_generate_request_is_signed_with_browser_headers_cookie_and_query(
    client, upstream
):
    upstream.submitted("123")
    assert client.submit("sess-abc", DRAFT) == "123"

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
    assert query["webId"] == [web_id] and query["da_version"] == ["3.3.9"]
    assert "X-Jimeng-Web-Id" not in h


def test_generate_body_carries_strings_and_gen_count(client, upstream):
    upstream.submitted("1")
    client.submit("s", draft(n=2))
    body = json.loads(upstream.calls(upstream.GENERATE)[0].request.body)
    assert isinstance(body["draft_content"], str)
    assert isinstance(body["metrics_extra"], str)
    content = json.loads(body["draft_content"])
    abilities = content["component_list"][0]["abilities"]
    assert abilities["gen_option"]["gen_count"] == 2
    core = abilities["generate"]["core_param"]
    assert core["model"] == body["extend"]["root_model"] == DRAFT.model_key
    assert core["seed"] == 42 and core["prompt"] == "a cat"


def test_identities_differ_per_account_and_are_stable():
    assert web_identity("a") == web_identity("a")
    assert web_identity("a") != web_identity("b")
    assert len(web_identity("a")[0]) == 19 and web_identity("a")[0][0] == "7"


def test_commerce_calls_have_no_query_and_parse_credits(client, upstream):
    upstream.reply(
        upstream.CREDIT,
        {"credit": {"gift_credit": 16, "purchase_credit": 2, "vip_credit": 1}},
        svr_time=1768098375,
        log_id="x",
    )
    points = client.credits("s")
    assert points == {
        "giftCredit": 16, "purchaseCredit": 2, "vipCredit": 1, "totalCredit": 19
    }  # fmt: skip
    assert "?" not in upstream.calls(upstream.CREDIT)[0].request.url


def test_passport_envelope_has_no_ret(client, upstream):
    upstream.raw(upstream.ACCOUNT, json={"data": {"user_id": 1}, "message": "success"})
    assert client.is_live("s") is True
    request = upstream.calls(upstream.ACCOUNT)[0].request
    assert "account_sdk_source=web" in request.url and request.body is None


def test_passport_error_is_not_live(client, upstream):
    body = {"data": {"error_code": 13, "description": "expired"}, "message": "error"}
    upstream.raw(upstream.ACCOUNT, json=body)
    assert client.is_live("s") is False


@pytest.mark.parametrize(
    ("ret", "error_class", "status"),
    [
        ("1015", errors.SessionExpiredError, 401),
        ("1006", errors.InsufficientQuotaError, 429),
        ("5000", errors.InsufficientQuotaError, 429),
        ("1010", errors.RateLimitError, 429),
        ("1019", errors.PermissionDeniedError, 403),
        ("4013", errors.PermissionDeniedError, 403),
        ("1018", errors.PermissionDeniedError, 403),
        ("3018", errors.UpstreamError, 502),
        ("1014", errors.UpstreamError, 502),
        ("1002", errors.UpstreamError, 502),
        ("34010100", errors.UpstreamError, 502),
        (1006, errors.InsufficientQuotaError, 429),  # numeric ret is compared as int
    ],
)
def test_ret_codes_map_to_errors(client, upstream, ret, error_class, status):
    upstream.reply(upstream.CREDIT, None, ret=ret, errmsg="nope")
    with pytest.raises(error_class) as caught:
        client.credits("s")
    assert type(caught.value) is error_class
    assert caught.value.status_code == status
    assert str(ret) in caught.value.message


def test_numeric_zero_ret_is_success(client, upstream):
    upstream.reply(upstream.CREDIT, {"credit": {"gift_credit": 1}}, ret=0)
    assert client.credits("s")["totalCredit"] == 1


def test_insufficient_quota_is_not_retryable(client, upstream):
    upstream.reply(upstream.GENERATE, None, ret="1006", errmsg="积分不足")
    with pytest.raises(errors.InsufficientQuotaError) as caught:
        client.submit("s", DRAFT)
    assert caught.value.retryable is False
    assert len(upstream.calls(upstream.GENERATE)) == 1


def test_upstream_message_never_echoes_the_session_id(client, upstream):
    upstream.reply(
        upstream.CREDIT, None, ret="1234", errmsg="bad cookie sessionid=s3cr3t"
    )
    with pytest.raises(errors.UpstreamError) as caught:
        client.credits("s3cr3t")
    assert "s3cr3t" not in caught.value.message


def test_safe_calls_retry_5xx_and_non_json(client, upstream):
    upstream.raw(upstream.CREDIT, status=502, body="<html>bad gateway</html>")
    upstream.raw(upstream.CREDIT, status=200, body="not json")
    upstream.reply(upstream.CREDIT, {"credit": {"gift_credit": 3}})
    assert client.credits("s")["totalCredit"] == 3
    assert len(upstream.calls(upstream.CREDIT)) == 3


def test_safe_calls_give_up_after_the_retries(client, upstream):
    upstream.raw(upstream.CREDIT, status=503, body="<html>down</html>")
    with pytest.raises(errors.UpstreamError) as caught:
        client.credits("s")
    assert caught.value.status_code == 502
    assert len(upstream.calls(upstream.CREDIT)) == 1 + client.retries


def test_timeouts_become_504(client, upstream):
    upstream.raw(upstream.CREDIT, body=requests.ReadTimeout("slow"))
    with pytest.raises(errors.UpstreamTimeoutError):
        client.credits("s")


def test_submit_is_resent_only_after_lookup_proves_it_was_not_accepted(
    client, upstream
):
    upstream.raw(upstream.GENERATE, status=502, body="<html>bad gateway</html>")
    upstream.submitted("777")
    upstream.reply(upstream.HISTORY, {})  # lookup by submit_id: not there
    assert client.submit("s", DRAFT) == "777"
    generate_calls = upstream.calls(upstream.GENERATE)
    lookup = json.loads(upstream.calls(upstream.HISTORY)[0].request.body)
    first, second = (json.loads(c.request.body) for c in generate_calls)
    assert lookup == {"submit_ids": [first["submit_id"]]}
    assert first["submit_id"] == second["submit_id"]  # the same submission again


def test_ambiguous_submit_adopts_the_record_instead_of_resubmitting(client, upstream):
    def lookup(request):
        submit_id = json.loads(request.body)["submit_ids"][0]
        body = {"ret": "0", "data": {submit_id: {"history_record_id": "555"}}}
        return 200, {}, json.dumps(body)

    upstream.raw(upstream.GENERATE, body=requests.ReadTimeout("slow"))
    upstream.mock.add_callback("POST", upstream.url(upstream.HISTORY), callback=lookup)
    assert client.submit("s", DRAFT) == "555"
    assert len(upstream.calls(upstream.GENERATE)) == 1


def test_connect_errors_on_submit_are_retried(client, upstream):
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    refused = requests.ConnectionError(
        MaxRetryError(None, "/", NewConnectionError(None, "refused"))
    )
    upstream.raw(upstream.GENERATE, body=refused)
    upstream.submitted("9")
    assert client.submit("s", DRAFT) == "9"
    assert len(upstream.calls(upstream.HISTORY)) == 0


def test_fetch_image_refuses_hosts_outside_the_allowlist(client):
    with pytest.raises(errors.UpstreamError, match="IMAGE_FETCH_ALLOWED_HOSTS"):
        client.fetch_image("http://169.254.169.254/latest/meta-data")
    with pytest.raises(errors.UpstreamError):
        client.fetch_image("file:///etc/passwd")
    with pytest.raises(errors.UpstreamError):
        client.fetch_image("https://byteimg.com.evil.example/x.png")


def test_fetch_image_caps_the_size(app, upstream):
    app.config["IMAGE_FETCH_MAX_BYTES"] = 10
    client = get_generator_client(app)
    upstream.mock.get("https://p3.byteimg.com/big.png", body=b"x" * 100)
    with pytest.raises(errors.UpstreamError, match="larger"):
        client.fetch_image("https://p3.byteimg.com/big.png")


def test_timed_out_submit_is_never_resent_when_not_found(client, upstream):
    import time

    upstream.raw(upstream.GENERATE, body=requests.ReadTimeout("slow"))
    upstream.reply(upstream.HISTORY, {})  # Jimeng does not know the submit_id (yet)
    with pytest.raises(errors.UpstreamTimeoutError) as caught:
        client.submit("s", DRAFT, deadline=time.monotonic() + 0.5)
    assert caught.value.retryable is False
    assert len(upstream.calls(upstream.GENERATE)) == 1
    assert len(upstream.calls(upstream.HISTORY)) >= 1


def test_retries_stop_at_the_deadline(client, upstream):
    import time

    client.backoff = 1.0
    upstream.raw(upstream.CREDIT, status=503, body="<html>down</html>")
    started = time.monotonic()
    with pytest.raises(errors.UpstreamError):
        client._call(upstream.CREDIT, "s", deadline=time.monotonic() + 0.2)
    assert time.monotonic() - started < 1.0
    assert len(upstream.calls(upstream.CREDIT)) == 1


def test_non_json_answer_to_submit_is_resent_after_lookup(client, upstream):
    upstream.raw(upstream.GENERATE, status=200, body="upstream connect error")
    upstream.submitted("42")
    upstream.reply(upstream.HISTORY, {})
    assert client.submit("s", DRAFT) == "42"
    assert len(upstream.calls(upstream.GENERATE)) == 2
