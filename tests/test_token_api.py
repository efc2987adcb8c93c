"""POST /token/check, /token/points, /token/receive in both modes; API keys; and
no session id or API key in any response or log line."""

from __future__ import annotations

import logging
import time

import gevent
import pytest
import requests

from jimeng_api.api.token import for_each_session
from jimeng_api.errors import SessionExpiredError
from jimeng_api.logs import mask
from tests.conftest import services
from tests.factories import (
    KEY,
    S1,
    S2,
    URLS,
    by_session,
    credit,
    envelope,
    pooled_app,
    session_of,
)

ALIVE, DEAD = "tokensessionALIVE111", "tokensessionDEAD2222"
LIVE = {"data": {"user_id": 7, "screen_name": "x"}, "message": "success"}
NOT_LIVE = {"data": {"error_code": 13, "description": "expired"}, "message": "error"}
EXPIRED = envelope(None, "1015", "login error")
GRANT = envelope(
    {"is_first_receive": False, "receive_quota": 60, "cur_total_credits": 76}
)
BUSY = envelope(None, "1014", "system busy")
ERROR_KEYS = {"message", "type", "param", "code"}


def bearer(*tokens):
    return {"Authorization": "Bearer " + ",".join(tokens)}


@pytest.fixture
def anonymous(app):
    return app.test_client()


@pytest.fixture
def pooled(make_app):
    return pooled_app(make_app)


def accounts_of(app):
    return services(app)["accounts"]


# --- /token/check ---


def test_check_live_session_needs_no_bearer(anonymous, upstream):
    upstream.raw(upstream.ACCOUNT, json=LIVE)
    response = anonymous.post("/token/check", json={"token": ALIVE})
    assert response.status_code == 200
    assert response.json == {"live": True}
    assert session_of(upstream.calls(upstream.ACCOUNT)[0].request) == ALIVE


def test_check_logged_out_session_is_false(anonymous, upstream):
    upstream.raw(upstream.ACCOUNT, json=NOT_LIVE)
    assert anonymous.post("/token/check", json={"token": DEAD}).json == {"live": False}


def test_check_transport_failure_is_a_502_not_false(anonymous, upstream):
    upstream.raw(upstream.ACCOUNT, body=requests.ConnectionError("reset"))
    response = anonymous.post("/token/check", json={"token": ALIVE})
    assert response.status_code == 502
    assert set(response.json["error"]) == ERROR_KEYS


@pytest.mark.parametrize(
    "body", [{}, {"token": ""}, {"token": 5}, {"token": "a;b=c"}, {"token": "x" * 300}]
)
def test_check_refuses_what_is_not_a_session_id(anonymous, upstream, body):
    response = anonymous.post("/token/check", json=body)
    assert response.status_code == 400
    assert response.json["error"]["param"] == "token"
    assert upstream.calls(upstream.ACCOUNT) == []


def test_check_in_pooled_mode_needs_a_key_then_checks_the_given_session(
    pooled, upstream
):
    upstream.raw(upstream.ACCOUNT, json=LIVE)
    client = pooled.test_client()
    assert client.post("/token/check", json={"token": ALIVE}).status_code == 401
    response = client.post("/token/check", json={"token": ALIVE}, headers=bearer(KEY))
    assert response.json == {"live": True}
    assert session_of(upstream.calls(upstream.ACCOUNT)[0].request) == ALIVE


# --- /token/points, passthrough ---


def test_points_one_entry_per_session_in_order(anonymous, upstream):
    by_session(upstream, upstream.CREDIT, {ALIVE: credit(16, 2, 1), DEAD: EXPIRED})
    response = anonymous.post("/token/points", headers=bearer(DEAD, ALIVE))
    assert response.status_code == 200
    dead, alive = response.json
    assert dead["token"] == mask(DEAD) and alive["token"] == mask(ALIVE)
    assert alive["points"] == {
        "giftCredit": 16, "purchaseCredit": 2, "vipCredit": 1, "totalCredit": 19,
        "videoCredit": 3,
    }  # fmt: skip
    assert set(dead) == {"token", "region", "proxy", "error"}
    assert set(dead["error"]) == ERROR_KEYS
    assert dead["error"]["code"] == "session_expired"


def test_points_transport_failure_is_reported_for_that_session_only(
    anonymous, upstream
):
    by_session(
        upstream,
        upstream.CREDIT,
        {ALIVE: credit(3), DEAD: requests.ConnectionError("reset")},
    )
    dead, alive = anonymous.post("/token/points", headers=bearer(DEAD, ALIVE)).json
    assert dead["error"]["type"] == "upstream_error"
    assert alive["points"]["totalCredit"] == 3


def test_points_needs_a_bearer(anonymous, upstream):
    response = anonymous.post("/token/points")
    assert response.status_code == 401
    assert upstream.calls(upstream.CREDIT) == []


def test_sessions_are_queried_concurrently():
    def slow(token):
        gevent.sleep(0.2)  # cooperative even without monkey-patching
        return {"points": {"totalCredit": len(token)}}

    started = time.monotonic()
    entries = for_each_session(["a", "bb", "ccc", "dddd", "eeeee"], slow)
    assert time.monotonic() - started < 0.6
    assert [e["points"]["totalCredit"] for e in entries] == [1, 2, 3, 4, 5]


def test_a_bug_for_one_session_does_not_hide_the_others():
    def work(token):
        if token == "bad":
            raise KeyError("oops")
        if token == "expired":
            raise SessionExpiredError()
        return {"points": {}}

    bad, expired, good = for_each_session(["bad", "expired", "good"], work)
    assert bad["error"]["type"] == "server_error"
    assert expired["error"]["code"] == "session_expired"
    assert good == {"token": mask("good"), "points": {}}


# --- /token/receive, passthrough ---


def test_receive_claims_per_session_and_reports_the_new_balance(anonymous, upstream):
    by_session(upstream, upstream.RECEIVE, {ALIVE: GRANT, DEAD: BUSY})
    by_session(upstream, upstream.CREDIT, {ALIVE: credit(76), DEAD: credit(5)})
    claimed, refused = anonymous.post(
        "/token/receive", headers=bearer(ALIVE, DEAD)
    ).json
    assert claimed == {
        "token": mask(ALIVE),
        "region": "cn",
        "proxy": None,
        "received": True,
        "receiveQuota": 60,
        "credits": {
            "giftCredit": 76, "purchaseCredit": 0, "vipCredit": 0, "totalCredit": 76,
            "videoCredit": 0,
        },
    }  # fmt: skip
    assert refused["received"] is False
    assert refused["credits"]["totalCredit"] == 5
    assert "1014" in refused["error"]["message"]


def test_receive_on_an_expired_session(anonymous, upstream):
    by_session(upstream, upstream.RECEIVE, {DEAD: EXPIRED})
    by_session(upstream, upstream.CREDIT, {DEAD: EXPIRED})
    [entry] = anonymous.post("/token/receive", headers=bearer(DEAD)).json
    assert entry["received"] is False and "credits" not in entry
    assert entry["error"]["code"] == "session_expired"


def test_receive_still_says_received_when_the_balance_read_fails(anonymous, upstream):
    by_session(upstream, upstream.RECEIVE, {ALIVE: GRANT})
    by_session(upstream, upstream.CREDIT, {ALIVE: requests.ConnectionError("reset")})
    [entry] = anonymous.post("/token/receive", headers=bearer(ALIVE)).json
    assert entry["received"] is True and entry["receiveQuota"] == 60
    assert entry["error"]["type"] == "upstream_error"


def test_receive_needs_a_bearer(anonymous):
    assert anonymous.post("/token/receive").status_code == 401


# --- pooled mode ---


def test_pooled_points_report_the_pool_masked(pooled, upstream):
    by_session(upstream, upstream.CREDIT, {S1: credit(10), S2: EXPIRED})
    response = pooled.test_client().post("/token/points", headers=bearer(KEY))
    assert response.status_code == 200
    first, second = response.json
    assert first["token"] == mask(S1) and first["points"]["totalCredit"] == 10
    assert second["token"] == mask(S2) and second["error"]["code"] == "session_expired"
    assert accounts_of(pooled).balance(S1) == 10  # cached for CREDIT_CACHE_TTL


def test_pooled_receive_reports_the_pool_and_refunds_a_dry_session(pooled, upstream):
    accounts_of(pooled).cool_down(S1)  # it had run dry
    by_session(upstream, upstream.RECEIVE, {S1: GRANT, S2: BUSY})
    by_session(upstream, upstream.CREDIT, {S1: credit(60), S2: credit(3)})
    first, second = (
        pooled.test_client().post("/token/receive", headers=bearer(KEY)).json
    )
    assert first["token"] == mask(S1) and first["received"] is True
    assert second["token"] == mask(S2) and second["received"] is False
    accounts = accounts_of(pooled)
    assert accounts.balance(S1) == 60 and accounts.balance(S2) == 3
    assert not accounts.cooling(S1)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (path, headers)
        for path in ("/token/points", "/token/receive", "/v1/images/generations")
        for headers in (
            {},
            {"Authorization": "Bearer sk-wrong"},
            {"Authorization": f"Bearer {S1}"},  # a real pooled session, not a key
            {"Authorization": f"Bearer {S1},{S2}"},
            {"Authorization": f"Basic {KEY}"},
            {"Authorization": f"Bearer {KEY}x"},
            {"Authorization": "Bearer"},
        )
    ],
)
def test_pooled_mode_needs_one_of_the_api_keys(pooled, upstream, path, headers):
    response = pooled.test_client().post(
        path, json={"prompt": "a cat"}, headers=headers
    )
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_api_key"
    assert response.headers["x-should-retry"] == "false"
    assert len(upstream.mock.calls) == 0


def test_any_configured_key_is_accepted(make_app, upstream):
    app = pooled_app(make_app, API_KEYS=("sk-alice-000000", "sk-bob-11111111"))
    upstream.generation("h1", URLS)
    response = app.test_client().post(
        "/v1/images/generations",
        json={"prompt": "a cat"},
        headers={"Authorization": "bearer sk-bob-11111111"},
    )
    assert response.status_code == 200
    assert session_of(upstream.calls(upstream.GENERATE)[0].request) in (S1, S2)


def test_pooled_mode_serves_images_from_the_pool(pooled, upstream):
    upstream.generation("h1", URLS)
    response = pooled.test_client().post(
        "/v1/images/generations", json={"prompt": "a cat"}, headers=bearer(KEY)
    )
    assert response.status_code == 200
    assert response.json["data"] == [{"url": u} for u in URLS]


# --- no secret anywhere ---

SECRETS = (ALIVE, DEAD, S1, S2, KEY)


def test_no_session_id_or_key_in_any_response_or_log(app, make_app, upstream, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    pooled = pooled_app(make_app)
    passthrough, pool_client = app.test_client(), pooled.test_client()
    upstream.raw(upstream.ACCOUNT, json=LIVE)
    by_session(
        upstream,
        upstream.CREDIT,
        {ALIVE: credit(1), DEAD: EXPIRED, S1: credit(0), S2: EXPIRED},
    )
    by_session(
        upstream, upstream.RECEIVE, {ALIVE: GRANT, DEAD: BUSY, S1: BUSY, S2: EXPIRED}
    )
    by_session(
        upstream,
        upstream.GENERATE,
        {DEAD: EXPIRED, S2: EXPIRED, S1: envelope(None, "1006", f"no credits {S1}")},
    )
    responses_seen = [
        passthrough.post("/token/check", json={"token": DEAD}),
        passthrough.post("/token/check", json={"token": f"{DEAD};x"}),
        passthrough.post("/token/points", headers=bearer(ALIVE, DEAD)),
        passthrough.post("/token/receive", headers=bearer(ALIVE, DEAD)),
        passthrough.post(
            "/v1/images/generations", json={"prompt": "c"}, headers=bearer(DEAD)
        ),
        pool_client.post("/token/points", headers=bearer(KEY)),
        pool_client.post("/token/receive", headers=bearer(KEY)),
        pool_client.post("/token/points", headers=bearer(S1)),
        pool_client.post("/token/points", headers=bearer(KEY + "x")),
        pool_client.post("/token/check", json={"token": ALIVE}, headers=bearer(KEY)),
        pool_client.post(
            "/v1/images/generations", json={"prompt": "c"}, headers=bearer(KEY)
        ),
    ]
    statuses = [r.status_code for r in responses_seen]
    assert statuses == [200, 400, 200, 200, 401, 200, 200, 401, 401, 200, 429], statuses
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert "ret=1015" in logged  # the scan did see the upstream errors
    for response in responses_seen:
        text = response.get_data(as_text=True) + str(response.headers)
        for secret in SECRETS:
            assert secret not in text, (response.request.path, secret)
    for secret in SECRETS:
        assert secret not in logged


@pytest.mark.parametrize("path", ["/token/points", "/token/receive"])
def test_an_optional_body_must_be_a_json_object(anonymous, upstream, path):
    by_session(upstream, upstream.CREDIT, {ALIVE: credit(1)})
    by_session(upstream, upstream.RECEIVE, {ALIVE: GRANT})
    for body, status in ((b"", 200), (b"{}", 200), (b"[]", 400), (b"\xc3(", 400)):
        response = anonymous.post(path, data=body, headers=bearer(ALIVE))
        assert response.status_code == status, body
    huge = b'{"x":"' + b"x" * 2_000_000 + b'"}'
    assert anonymous.post(path, data=huge, headers=bearer(ALIVE)).status_code == 413
