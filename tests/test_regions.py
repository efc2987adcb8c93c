"""Dreamina sites (protocol doc §7): a ``us-``/``hk-``/``jp-``/``sg-`` token speaks
to its own site, with that site's query, headers and cookies, never to the CN
host; per-site models; the pool file's region column."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from config import TestingConfig
from jimeng_api import catalog
from jimeng_api.errors import InvalidRequestError
from jimeng_api.roster import parse_bearer, parse_pool_line, read_session_file
from jimeng_api.upstream import JimengClient, account_id, describe, session_id
from jimeng_api.upstream.sites import Site
from jimeng_api.upstream.tokens import cookie_jar, region_of
from jimeng_api.upstream.transport import sign
from simulator import SimSettings, run_simulator_in_thread
from tests.factories import bearer, draft

SID = "0123456789abcdef0123456789abcdef"
V45 = "high_aes_general_v40l"
V50 = "high_aes_general_v50"


def settings(**changes) -> dict:
    base = {k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()}
    return {**base, **changes}


#: protocol doc §7, one row per site: where the calls go and what they say
SITES = {
    "cn": {
        "base": "https://jimeng.test",
        "commerce": "https://jimeng.test",
        "aid": "513695",
        "region": "cn",
        "web_id": True,
        "lan": "zh-Hans",
        "loc": "cn",
        "origin": "https://jimeng.jianying.com",
        "appvr": TestingConfig.JIMENG_APP_VERSION,
    },
    "us": {
        "base": "https://dreamina-api.us.capcut.com",
        "commerce": "https://commerce.us.capcut.com",
        "aid": "513641",
        "region": "US",
        "web_id": False,
        "lan": "en",
        "loc": "us",
        "origin": "https://dreamina.capcut.com",
        "appvr": TestingConfig.DREAMINA_APP_VERSION,
    },
    **{
        region: {
            "base": "https://mweb-api-sg.capcut.com",
            "commerce": "https://commerce-api-sg.capcut.com",
            "aid": "513641",
            "region": region.upper(),
            "web_id": False,
            "lan": lan,
            "loc": region,
            "origin": "https://dreamina.capcut.com",
            "appvr": TestingConfig.DREAMINA_APP_VERSION,
        }
        for region, lan in (("hk", "en"), ("jp", "ja"), ("sg", "en"))
    },
}
ANY = re.compile(r"https://.*")


def cookies_of(request) -> dict[str, str]:
    return dict(part.split("=", 1) for part in request.headers["Cookie"].split("; "))


@pytest.fixture
def wire():
    """Every upstream host answers success; the calls are recorded."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        data = {
            "aigc_data": {"history_record_id": "77"},
            "credit": {"gift_credit": 5, "purchase_credit": 0, "vip_credit": 0},
        }
        mock.post(ANY, json={"ret": "0", "errmsg": "success", "data": data})
        yield mock


@pytest.mark.parametrize("region", list(SITES))
def test_each_region_speaks_to_its_site_as_its_browser_does(wire, region):
    want = SITES[region]
    token = ("" if region == "cn" else region + "-") + SID
    client = JimengClient(settings())
    assert client.submit(token, draft(), str(uuid.uuid4())) == "77"
    client.history(token, ["77"])
    assert client.credits(token)["totalCredit"] == 5
    generate, history, credit = (c.request for c in wire.calls)

    for request in (generate, history):
        url = urlsplit(request.url)
        assert f"{url.scheme}://{url.netloc}" == want["base"]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert query["aid"] == want["aid"] == request.headers["Appid"]
        assert query["region"] == want["region"]
        assert ("webId" in query) is want["web_id"]
        if want["web_id"]:
            assert query["webId"] == cookies_of(request)["_tea_web_id"]
        assert request.headers["Lan"] == want["lan"]
        assert request.headers["Loc"] == want["loc"]
        assert request.headers["Origin"] == want["origin"]
        assert request.headers["Referer"].startswith(want["origin"] + "/")
        assert request.headers["Appvr"] == want["appvr"]
        device_time = int(request.headers["Device-Time"])
        path = url.path
        expected = sign(path, device_time, "7", want["appvr"], ("9e2c", "11ac"))
        assert request.headers["Sign"] == expected

    cookies = cookies_of(generate)
    assert cookies["sessionid"] == cookies["sessionid_ss"] == cookies["sid_tt"] == SID
    assert region + "-" not in generate.headers["Cookie"]
    body = json.loads(generate.body)
    assert body["http_common_info"] == {"aid": int(want["aid"])}
    assert json.loads(history.body)["http_common_info"] == {"aid": int(want["aid"])}

    assert credit.url == want["commerce"] + "/commerce/v1/benefits/user_credit"
    assert credit.headers["Appid"] == want["aid"]
    assert credit.headers["Referer"].startswith(want["origin"] + "/")


def test_a_dreamina_token_never_reaches_the_cn_host(wire):
    client = JimengClient(settings())
    for token in ("us-" + SID, "HK-" + SID, "Jp-" + SID, "sg-" + SID):
        client.submit(token, draft(), str(uuid.uuid4()))
        client.history(token, ["77"])
        client.credits(token)
        client.receive_credits(token)
        client.is_live(token)
    hosts = {urlsplit(c.request.url).netloc for c in wire.calls}
    assert hosts == {
        "dreamina-api.us.capcut.com",
        "commerce.us.capcut.com",
        "mweb-api-sg.capcut.com",
        "commerce-api-sg.capcut.com",
    }


def test_hk_and_jp_use_the_sg_hosts_unless_set():
    config = settings(
        DREAMINA_HK_BASE_URL="https://hk.example",
        DREAMINA_JP_COMMERCE_URL="https://jp.c",
    )
    hk, jp = Site.from_config(config, "hk"), Site.from_config(config, "jp")
    assert (hk.base_url, hk.commerce_url) == (
        "https://hk.example",
        "https://commerce-api-sg.capcut.com",
    )
    assert (jp.base_url, jp.commerce_url) == (
        "https://mweb-api-sg.capcut.com",
        "https://jp.c",
    )


def test_a_relay_base_url_keeps_the_dreamina_origin(wire):
    config = settings(DREAMINA_US_BASE_URL="https://relay.example")
    JimengClient(config).history("us-" + SID, ["1"])
    request = wire.calls[0].request
    assert request.url.startswith("https://relay.example/mweb/")
    assert request.headers["Origin"] == "https://dreamina.capcut.com"


def test_imagex_host_region_and_service_id_per_site():
    config = settings()
    cn, us, sg = (Site.from_config(config, r) for r in ("cn", "us", "sg"))
    assert (cn.imagex_url, cn.imagex_region) == (
        "https://imagex.bytedanceapi.com",
        "cn-north-1",
    )
    assert (us.imagex_url, us.imagex_region) == (
        "https://imagex16-normal-us-ttp.capcutapi.us",
        "us-east-1",
    )
    assert (sg.imagex_url, sg.imagex_region) == (
        "https://imagex-normal-sg.capcutapi.com",
        "ap-southeast-1",
    )
    grant = {"service_id": "svc-cn", "space_name": "space-intl"}
    assert cn.service_id(grant) == "svc-cn" and us.service_id(grant) == "space-intl"
    assert cn.service_id({}) == "tb4s082cfz" and sg.service_id({}) == "wopfjsm1ax"


# --- the token --------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["us-" + SID, "US-" + SID, "Us-" + SID, f"socks5://u:p@127.0.0.1:9@us-{SID}"],
)
def test_the_prefix_is_case_insensitive_and_removed_before_the_cookie(token):
    assert region_of(token) == "us"
    assert session_id(token) == SID
    assert cookie_jar(token)["sessionid"] == SID
    assert account_id(token) == account_id("us-" + SID)


def test_the_account_id_is_stable_and_names_the_site():
    legacy = hashlib.sha256(SID.encode()).hexdigest()[:8]
    assert account_id(SID) == legacy  # CN tokens keep the id they always had
    prefixed = hashlib.sha256(("us-" + SID).encode()).hexdigest()[:8]
    assert account_id("us-" + SID) == prefixed  # as before issue 18, too
    assert account_id("us-" + SID) != account_id(SID) != account_id("sg-" + SID)
    cookie = f"us-sessionid={SID}; ttwid=1%7Cx"
    assert account_id(cookie) == account_id("us-" + SID)
    assert account_id(f"http://a:b@10.0.0.1:8080@us-{SID}") == prefixed


def test_a_prefixed_bearer_is_accepted():
    assert parse_bearer(f"Bearer us-{SID}, jp-{SID}", 10) == [f"us-{SID}", f"jp-{SID}"]


def test_describe_shows_the_region_and_a_masked_proxy():
    assert describe(SID) == {"region": "cn", "proxy": None}
    assert describe(f"socks5h://user:secret@10.1.2.3:1080@jp-{SID}") == {
        "region": "jp",
        "proxy": "socks5h://***@10.1.2.3:1080",
    }
    assert describe("us-" + SID, "http://10.0.0.9:3128") == {
        "region": "us",
        "proxy": "http://10.0.0.9:3128",
    }


# --- models per site ------------------------------------------------------------------


def test_an_international_account_cannot_send_a_cn_only_model(wire):
    client = JimengClient(settings())
    with pytest.raises(InvalidRequestError) as caught:
        client.submit("us-" + SID, draft(model_key=V50), str(uuid.uuid4()))
    error = caught.value
    assert error.status_code == 400 and error.code == "model_not_available"
    assert error.param == "model"
    assert "jimeng-5.0" in error.message and "Dreamina US" in error.message
    for model_id in catalog.SITE_MODELS["us"]:
        assert model_id in error.message
    assert len(wire.calls) == 0
    assert client.submit("sg-" + SID, draft(model_key=V50), str(uuid.uuid4()))


def test_site_models_follow_the_protocol_table():
    assert [m.id for m in catalog.site_models("us")] == [
        "jimeng-4.5",
        "jimeng-4.1",
        "jimeng-4.0",
        "jimeng-3.0",
    ]
    assert [m.id for m in catalog.site_models("jp")][:2] == ["jimeng-5.0", "jimeng-4.6"]
    assert catalog.site_models("cn") == catalog.list_models()
    v50 = catalog.get_model("jimeng-5.0")
    assert catalog.for_site(v50, "sg") is v50
    assert catalog.for_site(v50, "us", defaulted=True).id == "jimeng-4.5"
    with pytest.raises(InvalidRequestError):
        catalog.for_site(v50, "us")


# --- the pool file


@pytest.mark.parametrize(
    ("line", "token"),
    [
        (SID, SID),
        (f"us-{SID}", f"us-{SID}"),
        (f"us {SID}", f"us-{SID}"),
        (f"JP\t{SID}", f"jp-{SID}"),
        (f"cn {SID}", SID),
        (
            f"sg  socks5://u:p@10.0.0.2:1080  {SID}",
            f"socks5://u:p@10.0.0.2:1080@sg-{SID}",
        ),
        (f"http://10.0.0.3:3128 us {SID}", f"http://10.0.0.3:3128@us-{SID}"),
        (f"https://u:p@h.example:443@hk-{SID}", f"https://u:p@h.example:443@hk-{SID}"),
        (f"jp sessionid={SID}; ttwid=1%7Cx", f"jp-sessionid={SID}; ttwid=1%7Cx"),
        (f"sessionid={SID}; ttwid=1%7Cx", f"sessionid={SID}; ttwid=1%7Cx"),
    ],
)
def test_pool_lines_may_name_their_region_and_proxy(line, token):
    assert parse_pool_line(line.replace("\\t", "\t").replace("\t", " ")) == token


@pytest.mark.parametrize(
    "line",
    [
        f"us us-{SID}",  # the region twice
        f"http://10.0.0.3:1 http://a:b@h:2@{SID}",  # the proxy twice
        f"ftp://10.0.0.3:21@{SID}",
        f"socks5://10.0.0.3:99999@{SID}",
        "us sessionid=a b",
    ],
)
def test_bad_pool_lines_are_refused(line):
    assert parse_pool_line(line) is None


def test_the_session_file_keeps_regions_and_proxies_and_logs_no_secret(
    tmp_path, caplog
):
    path = tmp_path / "sessions.txt"
    path.write_text(
        "# team pool\n"
        f"{SID}\n"
        f"us  http://alice:s3cretpw@10.0.0.5:3128  {SID}  # Alice's US account\n"
        "\n"
        "jp ftp://nope:leakedpw@x:1 abcdef123456\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.DEBUG):
        tokens = read_session_file(str(path))
    assert tokens == [SID, f"http://alice:s3cretpw@10.0.0.5:3128@us-{SID}"]
    assert "line 5" in caplog.text
    assert "leakedpw" not in caplog.text and "s3cretpw" not in caplog.text


# --- end to end against the simulator in Dreamina mode


@pytest.fixture
def two_sites():
    fast = {"task_seconds": 0.2, "task_jitter": 0.1}
    with run_simulator_in_thread(SimSettings(**fast)) as cn:
        with run_simulator_in_thread(SimSettings(site="us", **fast)) as us:
            yield cn, us


def test_a_us_account_generates_on_the_us_site_only(make_app, two_sites):
    cn, us = two_sites
    app = make_app(
        JIMENG_BASE_URL=cn.base_url,
        DREAMINA_US_BASE_URL=us.base_url,
        DREAMINA_US_COMMERCE_URL=us.base_url,
    )
    client = app.test_client()
    body = {"prompt": "a harbour", "model": "jimeng-4.5"}
    answer = client.post(
        "/v1/images/generations", json=body, headers=bearer("us-" + SID)
    )
    assert answer.status_code == 200, answer.json
    assert len(answer.json["data"]) == 4
    assert all(d["url"].startswith(us.base_url) for d in answer.json["data"])

    refused = client.post(
        "/v1/images/generations",
        json={"prompt": "x", "model": "jimeng-5.0"},
        headers=bearer("us-" + SID),
    )
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "model_not_available"
    assert "jimeng-4.5" in refused.json["error"]["message"]

    points = client.post("/token/points", headers=bearer("us-" + SID))
    assert points.status_code == 200 and "points" in points.json[0], points.json

    us_stats, cn_stats = us.state.stats(), cn.state.stats()
    assert us_stats["violations"] == [], us_stats["violations"]
    assert us_stats["submissions"] == 1
    assert {t["session"] for t in us_stats["tasks"].values()} == {SID}
    assert us_stats["calls"].get("user_credit", 0) >= 1
    assert sum(cn_stats["calls"].values()) == 0  # the CN host never heard of it

    cn_answer = client.post(
        "/v1/images/generations", json={"prompt": "x", "n": 1}, headers=bearer(SID)
    )
    assert cn_answer.status_code == 200, cn_answer.json
    assert cn.state.stats()["submissions"] == 1
    assert cn.state.stats()["violations"] == []
    assert us.state.stats()["submissions"] == 1


def _points_describe_accounts() -> bool:
    from jimeng_api.api import token

    return hasattr(token, "described")


@pytest.mark.skipif(
    not _points_describe_accounts(), reason="api/token.py does not describe accounts"
)
def test_token_points_show_each_account_s_region_and_masked_proxy(make_app, two_sites):
    from tests.factories import KEY

    cn, us = two_sites
    pool = (SID, f"socks5://user:pw0rd-x@127.0.0.1:9@us-{SID}")
    app = make_app(
        JIMENG_BASE_URL=cn.base_url,
        DREAMINA_US_BASE_URL=us.base_url,
        DREAMINA_US_COMMERCE_URL=us.base_url,
        JIMENG_SESSION_IDS=pool,
        API_KEYS=(KEY,),
    )
    answer = app.test_client().post("/token/points", headers=bearer(KEY))
    assert answer.status_code == 200
    first, second = answer.json
    assert (first["region"], first["proxy"]) == ("cn", None)
    assert "points" in first
    assert (second["region"], second["proxy"]) == ("us", "socks5://***@127.0.0.1:9")
    assert second["error"]["code"] == "proxy_unreachable"  # nothing listens on :9
    assert "pw0rd-x" not in answer.get_data(as_text=True)
