"""upstream/tokens.py, sites.py and sessions.py: who an account is and what it
sends (cookies, webId, Origin); tokens that are bare session ids or whole cookie
strings."""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from config import TestingConfig
from jimeng_api.roster import parse_bearer
from jimeng_api.upstream import JimengClient, account_id, session_id
from jimeng_api.upstream.sessions import SessionPool
from jimeng_api.upstream.sites import Site
from jimeng_api.upstream.tokens import cookie_jar, parse_cookie_string, web_identity
from tests.factories import draft

COOKIES = "sessionid=abc123; ttwid=1%7Cxyz; odin_tt=deadbeef; passport_csrf_token=q"
URLS = ["https://p9-dreamina-sign.byteimg.com/img/0.jpeg"]


def settings(**changes) -> dict:
    """TestingConfig as a plain mapping, with *changes*."""
    base = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    return {**base, **changes}


def cookies_of(request) -> dict[str, str]:
    return dict(part.split("=", 1) for part in request.headers["Cookie"].split("; "))


# --- what a token is ----------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("abc123", "abc123"),
        ("a.b-c_d:e+f/g", "a.b-c_d:e+f/g"),
        (COOKIES, "abc123"),
        ("ttwid=x; sessionid=abc123", "abc123"),
        ("sid_tt=fromsid; ttwid=x", "fromsid"),
        ("sessionid_ss=fromss; uid_tt=u", "fromss"),
        ("sessionid=abc123;", "abc123"),
    ],
)
def test_a_token_names_its_session(token, expected):
    assert session_id(token) == expected


@pytest.mark.parametrize(
    "token",
    [
        "abc\n",  # fullmatch: a trailing newline does not pass
        "abc\r\n",
        "\nabc",
        "a b",
        "a;b",
        "",
        "x" * 257,
        "ttwid=x; odin_tt=y",  # a cookie string without a session cookie
        "sessionid=abc\nX-Injected: 1",
        "sessionid=a b",
        "sessionid=abc; bad name=1",
        "sessionid=" + "x" * 9000,
        "sessionid=ok, other=1",
    ],
)
def test_malformed_tokens_are_refused(token):
    assert session_id(token) is None


def test_a_newline_inside_a_bearer_token_is_refused():
    from jimeng_api.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        parse_bearer("Bearer sessionid=abc\nX-Injected: 1", 10)
    with pytest.raises(AuthenticationError):
        parse_bearer("Bearer abc\ndef", 10)
    # whitespace around each comma-separated token is trimmed, as before
    assert parse_bearer("Bearer abc \t, def", 10) == ["abc", "def"]


def test_token_check_refuses_a_trailing_newline(app, upstream):
    response = app.test_client().post("/token/check", json={"token": "abc\n"})
    assert response.status_code == 400
    assert response.json["error"]["param"] == "token"
    assert upstream.calls(upstream.ACCOUNT) == []


def test_a_bearer_may_carry_cookie_strings():
    assert parse_bearer(f"Bearer {COOKIES}, plain-id", 10) == [COOKIES, "plain-id"]


def test_the_account_id_is_the_same_for_a_session_and_its_cookie_string():
    assert account_id(COOKIES) == account_id("abc123")
    assert account_id("abc123") != account_id("abc124")
    assert re.fullmatch(r"[0-9a-f]{8}", account_id("abc123"))


def test_parse_cookie_string_keeps_names_and_values():
    assert parse_cookie_string(COOKIES) == {
        "sessionid": "abc123",
        "ttwid": "1%7Cxyz",
        "odin_tt": "deadbeef",
        "passport_csrf_token": "q",
    }
    assert parse_cookie_string("plain") is None


# --- cookies, web id, query -----------------------------------------------------


def test_identities_differ_per_account_and_are_stable():
    assert web_identity("a") == web_identity("a")
    assert web_identity("a") != web_identity("b")
    web_id, user_id = web_identity("a")
    assert len(web_id) == 19 and web_id[0] == "7" and len(user_id) == 32


def test_a_bare_session_gets_the_site_cookies():
    jar = cookie_jar("abc123")
    web_id, user_id = web_identity("abc123")
    assert jar["sessionid"] == jar["sessionid_ss"] == jar["sid_tt"] == "abc123"
    assert jar["_tea_web_id"] == web_id and jar["uid_tt"] == user_id


def test_a_pasted_cookie_string_is_sent_as_it_is():
    jar = cookie_jar(COOKIES + "; _tea_web_id=7000000000000000042")
    for name, value in parse_cookie_string(COOKIES).items():
        assert jar[name] == value
    assert jar["_tea_web_id"] == "7000000000000000042"  # the browser's own id wins


@pytest.mark.parametrize(
    "token", ["abc123", COOKIES, COOKIES + "; _tea_web_id=7000000000000000042"]
)
def test_web_id_in_the_query_is_the_tea_web_id_cookie(token):
    site = Site.from_config(settings())
    session = SessionPool(site, 10, 10).get(token)
    web_id = parse_qs(urlsplit(session.jimeng_query).query)["webId"]
    cookies = dict(p.split("=", 1) for p in session.headers["Cookie"].split("; "))
    assert web_id == [cookies["_tea_web_id"]]


def test_the_session_pool_is_bounded_and_keeps_recent_sessions():
    pool = SessionPool(Site.from_config(settings()), 100, 4)
    for i in range(2_000):
        pool.get(f"token-{i}")
    assert len(pool) == 100
    recent = pool.get("token-1999")
    assert pool.get("token-1999") is recent


# --- on the wire ------------------------------------------------------------------


@pytest.fixture
def relay():
    """A client whose calls go to a relay host, not to the site."""
    config = settings(JIMENG_BASE_URL="https://relay.example:8443")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(
            re.compile(r"https://relay\.example:8443/.*"),
            json={"ret": "0", "data": {"aigc_data": {"history_record_id": "9"}}},
        )
        yield JimengClient(config), mock


def test_origin_and_referer_are_the_site_s_whatever_the_base_url(relay):
    client, mock = relay
    client.submit("abc123", draft(), str(uuid.uuid4()))
    request = mock.calls[0].request
    assert request.url.startswith("https://relay.example:8443/mweb/")
    assert request.headers["Origin"] == "https://jimeng.jianying.com"
    assert request.headers["Referer"].startswith("https://jimeng.jianying.com/")
    assert "relay.example" not in request.headers["Referer"]


def test_a_configured_site_origin_is_used(upstream):
    config = settings(JIMENG_SITE_ORIGIN="https://dreamina.example")
    upstream.submitted("9")
    JimengClient(config).submit("abc123", draft(), str(uuid.uuid4()))
    request = upstream.calls(upstream.GENERATE)[0].request
    assert request.headers["Origin"] == "https://dreamina.example"
    assert request.headers["Referer"] == (
        "https://dreamina.example/ai-tool/generate?type=image"
    )


def test_a_cookie_string_token_generates_with_its_own_cookies(app, upstream):
    upstream.generation("h1", URLS)
    response = app.test_client().post(
        "/v1/images/generations",
        json={"prompt": "a cat"},
        headers={"Authorization": f"Bearer {COOKIES}"},
    )
    assert response.status_code == 200, response.json
    request = upstream.calls(upstream.GENERATE)[0].request
    cookies = cookies_of(request)
    assert cookies["sessionid"] == "abc123"
    assert cookies["ttwid"] == "1%7Cxyz" and cookies["odin_tt"] == "deadbeef"
    query = parse_qs(urlsplit(request.url).query)
    assert query["webId"] == [cookies["_tea_web_id"]]
    poll = upstream.calls(upstream.HISTORY)[0].request
    assert cookies_of(poll) == cookies  # the poller speaks as the same browser


def test_a_task_made_with_a_cookie_string_is_the_session_s_task(app, upstream):
    upstream.generation("h1", URLS)
    created = app.test_client().post(
        "/v1/images/generations",
        json={"prompt": "a cat"},
        headers={"Authorization": f"Bearer {COOKIES}"},
    )
    task_id = created.headers["X-Task-Id"]
    same = app.test_client().get(
        f"/v1/tasks/{task_id}", headers={"Authorization": "Bearer abc123"}
    )
    assert same.status_code == 200 and same.json["status"] == "completed"


def test_submit_id_is_a_fresh_uuid4_sent_twice_in_the_body(client, upstream):
    upstream.generation("h1", URLS)
    upstream.generation("h2", URLS)
    client.post("/v1/images/generations", json={"prompt": "a"})
    client.post("/v1/images/generations", json={"prompt": "b"})
    bodies = upstream.bodies(upstream.GENERATE)
    ids = [body["submit_id"] for body in bodies]
    assert len(set(ids)) == 2
    for body, submit_id in zip(bodies, ids, strict=True):
        assert uuid.UUID(submit_id).version == 4
        assert json.loads(body["metrics_extra"])["generateId"] == submit_id


def test_the_submit_id_is_recorded_on_the_job_before_it_is_sent(app, upstream):
    seen = {}
    jobs = app.extensions["jimeng"]["jobs"]

    def generate(request):
        submit_id = json.loads(request.body)["submit_id"]
        [job_id] = app.extensions["jimeng"]["store"].unfinished_jobs()
        seen["job"] = jobs.get(job_id)
        seen["sent"] = submit_id
        body = {"ret": "0", "data": {"aigc_data": {"history_record_id": "h1"}}}
        return 200, {}, json.dumps(body)

    upstream.mock.add_callback(
        responses.POST, upstream.url(upstream.GENERATE), callback=generate
    )
    upstream.record("h1", 50, URLS)
    response = app.test_client().post(
        "/v1/images/generations",
        json={"prompt": "a"},
        headers={"Authorization": "Bearer abc123"},
    )
    assert response.status_code == 200
    assert seen["job"]["phase"] == "submitting"
    assert seen["job"]["submit_id"] == seen["sent"]
    assert seen["job"]["account"] == account_id("abc123")
    assert "abc123" not in json.dumps(seen["job"])  # the token is sealed


# --- JIMENG_COOKIES: the cookie set is configuration --------------------------------


def test_the_cookie_set_is_configurable(make_app, upstream):
    template = "sessionid={session}; _tea_web_id={web_id}; store-region=cn-gd"
    app = make_app(JIMENG_COOKIES=template)
    upstream.generation("h1", URLS)
    response = app.test_client().post(
        "/v1/images/generations",
        json={"prompt": "a cat"},
        headers={"Authorization": "Bearer abc123"},
    )
    assert response.status_code == 200, response.json
    request = upstream.calls(upstream.GENERATE)[0].request
    web_id, _ = web_identity("abc123")
    assert cookies_of(request) == {
        "sessionid": "abc123", "_tea_web_id": web_id, "store-region": "cn-gd"
    }  # fmt: skip
    assert parse_qs(urlsplit(request.url).query)["webId"] == [web_id]


def test_a_cookie_set_without_the_web_id_cookie_still_sends_web_id():
    site = Site.from_config(settings(JIMENG_COOKIES="sessionid={session}"))
    session = SessionPool(site, 10, 10).get("abc123")
    assert session.headers["Cookie"] == "sessionid=abc123"
    web_id = parse_qs(urlsplit(session.jimeng_query).query)["webId"]
    assert web_id == [web_identity("abc123")[0]]


@pytest.mark.parametrize(
    "template",
    ["is_staff_user=false", "sessionid={sessionid}", "sessionid", "a b={session}"],
)
def test_a_malformed_cookie_set_refuses_to_start(template):
    from jimeng_api import create_app

    with pytest.raises(ValueError, match="JIMENG_COOKIES"):
        create_app(TestingConfig, overrides={"JIMENG_COOKIES": template})
