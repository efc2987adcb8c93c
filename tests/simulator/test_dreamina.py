"""The simulator's Dreamina mode (``--site us|sg``, protocol §7): app id, region,
no webId, Lan/Loc, Origin, models on offer, ImageX service and SigV4 region."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from simulator import (
    RunningSimulator,
    SimSettings,
    imagex,
    run_simulator_in_thread,
    start_simulator_process,
    stop_simulator_process,
)
from simulator.sites import DREAMINA_ORIGIN
from simulator.testing import SimClient, draft_v2

GENERATE = "/mweb/v1/aigc_draft/generate"
HISTORY = "/mweb/v1/get_history_by_ids"
CREDIT = "/commerce/v1/benefits/user_credit"
UPLOAD_TOKEN = "/mweb/v1/get_upload_token"
V45 = "high_aes_general_v40l"
V50 = "high_aes_general_v50"
NANOBANANA = "external_model_gemini_flash_image_v25"
FAST = {"task_seconds": 0.3, "task_jitter": 0.1, "seed": 3}


@pytest.fixture(params=["us", "sg"])
def dreamina(request) -> Iterator[RunningSimulator]:
    running = run_simulator_in_thread(SimSettings(site=request.param, **FAST))
    try:
        yield running
    finally:
        running.stop()


def site_client(sim: RunningSimulator, region: str | None = None, **kw) -> SimClient:
    return SimClient(sim.base_url, site=sim.settings.site, region=region, **kw)


def violations(sim: RunningSimulator) -> list[str]:
    return [v["reason"] for v in sim.state.stats()["violations"]]


def test_a_dreamina_client_generates_polls_and_reads_credits(dreamina):
    with site_client(dreamina) as client:
        history_id = client.submit("a lighthouse", model=V45)
        record = client.wait(history_id)
        assert record["status"] == 50 and len(record["item_list"]) == 4
        credit = client.call(CREDIT, {})
        assert credit["ret"] == "0" and credit["data"]["credit"]["gift_credit"] >= 0
    assert violations(dreamina) == []


@pytest.mark.parametrize(
    ("region", "lan", "loc"),
    [("HK", "en", "hk"), ("JP", "ja", "jp"), ("SG", "en", "sg")],
)
def test_the_asian_hosts_serve_hk_jp_and_sg(region, lan, loc):
    with run_simulator_in_thread(SimSettings(site="sg", **FAST)) as sim:
        with site_client(sim, region) as client:
            assert client.sign_headers(GENERATE)["Lan"] == lan
            assert client.sign_headers(GENERATE)["Loc"] == loc
            assert client.generate(draft=draft_v2("x", model=V50))["ret"] == "0"
        assert violations(sim) == []


def _reason_of(sim: RunningSimulator, answer: dict) -> str:
    assert answer["ret"] == "1014", answer
    return violations(sim)[-1]


def test_a_cn_shaped_request_is_refused_by_a_dreamina_site(dreamina):
    with SimClient(dreamina.base_url) as cn_client:  # aid 513695, region cn, webId
        answer = cn_client.generate(draft=draft_v2("x", model=V45))
    assert "Appid '513695'" in _reason_of(dreamina, answer)


def test_a_dreamina_request_is_refused_by_the_cn_site():
    with run_simulator_in_thread(SimSettings(**FAST)) as cn:
        with SimClient(cn.base_url, site="us") as client:
            answer = client.generate(draft=draft_v2("x", model=V45))
        assert answer["ret"] == "1014"
        assert violations(cn) == ["missing query param webId/web_id"]
        assert cn.state.stats()["submissions"] == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webId": "7000000000000000001"}, "webId sent to a Dreamina site"),
        ({"region": "cn"}, "region 'cn' is not served"),
        ({"aid": "513695"}, "query aid '513695' != Appid header '513641'"),
    ],
)
def test_the_query_must_be_the_dreamina_client_s(dreamina, change, reason):
    with site_client(dreamina) as client:
        params = {**client.default_params(HISTORY), **change}
        answer = client.call(HISTORY, {"history_ids": ["1"]}, params=params)
    assert reason in _reason_of(dreamina, answer)


def test_lan_and_loc_must_match_the_region(dreamina):
    with site_client(dreamina) as client:
        answer = client.call(HISTORY, {"history_ids": ["1"]}, headers={"Loc": "cn"})
    assert "Lan/Loc" in _reason_of(dreamina, answer)


def test_the_origin_is_dreamina_s_not_jimeng_s(dreamina):
    with site_client(dreamina) as client:
        ok = client.call(
            HISTORY,
            {"history_ids": ["1"]},
            headers={"Origin": DREAMINA_ORIGIN, "Referer": DREAMINA_ORIGIN + "/"},
        )
        assert ok["ret"] == "0"
        refused = client.call(
            HISTORY,
            {"history_ids": ["1"]},
            headers={"Origin": "https://jimeng.jianying.com"},
        )
    assert refused["ret"] == "4013"


def test_commerce_calls_go_without_a_query_and_with_the_site_s_app_id(dreamina):
    with site_client(dreamina) as client:
        assert client.call(CREDIT, {})["ret"] == "0"
        cn_headers = {"Appid": "513695"}
        answer = client.call(CREDIT, {}, headers=cn_headers)
    assert "Appid '513695'" in _reason_of(dreamina, answer)


def test_us_offers_its_models_only():
    with run_simulator_in_thread(SimSettings(site="us", **FAST)) as us:
        with site_client(us) as client:
            assert client.generate(draft=draft_v2("x", model=NANOBANANA))["ret"] == "0"
            refused = client.generate(draft=draft_v2("x", model=V50))
        assert refused["ret"] == "1000"
        reasons = [r["reason"] for r in us.state.stats()["rejections"]]
        assert any("not offered on the us site" in r for r in reasons)
    with run_simulator_in_thread(SimSettings(site="sg", **FAST)) as sg:
        with site_client(sg) as client:
            assert client.generate(draft=draft_v2("x", model=V50))["ret"] == "0"


# --- uploads -------------------------------------------------------------------


def _signed(keys: dict, method: str, query: str, region: str, body: bytes | None):
    headers = {
        "x-amz-date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "x-amz-security-token": keys["session_token"],
    }
    if body is not None:
        headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    headers["Authorization"] = imagex.sign(
        method,
        query,
        headers,
        keys["access_key_id"],
        keys["secret_access_key"],
        region=region,
        payload=body,
    )
    return headers


@pytest.mark.parametrize(
    ("site", "region", "prefix"),
    [("us", "us-east-1", "tos-useast5-i-"), ("sg", "ap-southeast-1", "tos-alisg-i-")],
)
def test_uploads_name_the_service_in_space_name_and_sign_for_the_site_region(
    site, region, prefix
):
    with run_simulator_in_thread(SimSettings(site=site, **FAST)) as sim:
        with SimClient(sim.base_url, site=site) as client:
            keys = client.call(UPLOAD_TOKEN, {"scene": 2})["data"]
            assert keys["space_name"] == "wopfjsm1ax" and "service_id" not in keys
            query = (
                "Action=ApplyImageUpload&Version=2018-08-01&ServiceId=wopfjsm1ax"
                f"&FileSize=10&s={int(time.time())}"
            )
            url = f"{sim.base_url}/?{query}"
            wrong = client.http.get(
                url, headers=_signed(keys, "GET", query, "cn-north-1", None), timeout=5
            )
            assert wrong.status_code == 401
            applied = client.http.get(
                url, headers=_signed(keys, "GET", query, region, None), timeout=5
            )
        assert applied.status_code == 200, applied.text
        result = applied.json()
        assert result["ResponseMetadata"]["Region"] == region
        store = result["Result"]["UploadAddress"]["StoreInfos"][0]["StoreUri"]
        assert store.startswith(prefix + "wopfjsm1ax/")


# --- the CLI --------------------------------------------------------------------


def test_the_cli_takes_site():
    proc, base_url = start_simulator_process(["--site", "us", "--task-seconds", "0.2"])
    try:
        config = requests.get(base_url + "/__sim/config", timeout=5).json()
        assert config["site"] == "us"
        with SimClient(base_url, site="us") as client:
            assert client.submit("x", model=V45)
        bad = requests.post(base_url + "/__sim/config", json={"site": "eu"}, timeout=5)
        assert bad.status_code == 400
    finally:
        stop_simulator_process(proc)
