"""2026 codes: 1310 per-account limit, 2061 retired models, 1014 on credit calls
with a query, 4013 risk control (webId vs _tea_web_id, Origin/Referer)."""

from __future__ import annotations

import uuid

import pytest

from simulator.settings import RETIRED_MODELS
from simulator.testing import SimClient, compact, draft_v2, generate_body

CREDIT = "/commerce/v1/benefits/user_credit"
RECEIVE = "/commerce/v1/benefits/credit_receive"
GENERATE = "/mweb/v1/aigc_draft/generate"
HISTORY = "/mweb/v1/get_history_by_ids"
PASSPORT = "/passport/account/info/v2"
WEB_ID = "7756147496321299000"  # SimClient's webId query value
SITE = "https://jimeng.jianying.com"


def _total(client: SimClient) -> int:
    return client.call(CREDIT, {})["data"]["credit"]["gift_credit"]


# -- 1310 ------------------------------------------------------------------------
def test_parallel_limit_1310_not_accepted_not_charged(client) -> None:
    client.configure(max_running_per_session=1, task_seconds=100)
    client.submit()
    body = client.generate()
    assert (body["ret"], body["errmsg"]) == ("1310", "使用高峰期，暂时无法提交更多任务")
    assert body["data"]["aigc_data"] is None
    assert body["data"]["fail_code"] == "exceed_model_parallel_max"
    assert _total(client) == 99  # only the accepted task was charged
    stats = client.stats()
    assert stats["submissions"] == 1 and stats["rejections"][-1]["ret"] == "1310"
    client.sim("clock", {"advance": 200})
    assert client.generate()["ret"] == "0"


def test_parallel_limit_is_per_account(client, sim) -> None:
    client.configure(max_running_per_session=1, task_seconds=100)
    client.submit()
    with SimClient(sim.base_url, session="another-account") as other:
        assert other.generate()["ret"] == "0"
        assert other.generate()["ret"] == "1310"


def test_queued_and_stalled_tasks_hold_their_slot(client) -> None:
    client.configure(max_running_per_session=1, task_seconds=10, queue_seconds=500)
    client.submit()
    assert client.generate()["ret"] == "1310"  # still queued
    client.sim("reset", {})
    client.configure(queue_seconds=0, stall_rate=1)
    client.submit(gen_count=2)
    client.sim("clock", {"advance": 10_000})
    assert client.generate()["ret"] == "1310"  # stuck in 45 forever


# -- 2061 ------------------------------------------------------------------------
def _video_body(model: str) -> dict:
    submit_id = str(uuid.uuid4())
    draft = {
        "type": "draft",
        "id": str(uuid.uuid4()),
        "min_version": "3.0.5",
        "version": "3.3.9",
        "component_list": [{"type": "video_base_component", "abilities": {}}],
    }
    return {
        "extend": {"root_model": model},
        "submit_id": submit_id,
        "metrics_extra": compact({"promptSource": "custom"}),
        "draft_content": compact(draft),
        "http_common_info": {"aid": 513695},
    }


@pytest.mark.parametrize(
    "model",
    [
        "dreamina_ic_generate_video_model_vgfm_3.5_pro",
        "dreamina_ic_generate_video_model_vgfm_3.0",
        "dreamina_ic_generate_video_model_vgfm_lite",
        "dreamina_ic_generate_video_model_vgfm1.0",
    ],
)
def test_retired_video_models_2061(client, model) -> None:
    assert model in RETIRED_MODELS
    body = client.call(GENERATE, _video_body(model))
    assert body["ret"] == "2061"
    assert "retired" in client.stats()["rejections"][-1]["reason"]


def test_live_video_keys_are_not_retired(client) -> None:
    # seedance-1.0-pro/-fast (2026 §5) reuse vgfm_3.0_* keys: not 2061.
    body = client.call(
        GENERATE, _video_body("dreamina_ic_generate_video_model_vgfm_3.0_pro")
    )
    assert body["ret"] == "1000"  # the simulator does not generate videos


def test_retired_models_knob_covers_image_keys(client) -> None:
    client.configure(retired_models=["high_aes_general_v30l:general_v3.0_18b"])
    v30 = "high_aes_general_v30l:general_v3.0_18b"
    body = client.generate(draft=draft_v2("x", model=v30))
    assert body["ret"] == "2061" and body["data"] is None
    assert _total(client) == 100 and client.stats()["submissions"] == 0
    assert client.generate()["ret"] == "0"  # v50 is still live
    client.configure(retired_models=[])
    assert client.call(GENERATE, generate_body(draft_v2("x", model=v30)))["ret"] == "0"


# -- credit calls with a query string --------------------------------------------
@pytest.mark.parametrize(
    ("path", "body"), [(CREDIT, {}), (RECEIVE, {"time_zone": "Asia/Shanghai"})]
)
def test_credit_calls_with_a_query_are_refused(client, path, body) -> None:
    refused = client.call(path, body, params={"aid": "513695", "webId": WEB_ID})
    assert (refused["ret"], refused["errmsg"]) == ("1014", "system busy")
    violation = client.stats()["violations"][-1]
    assert "query string" in violation["reason"]
    assert client.call(path, body)["ret"] == "0"  # no query: fine


def test_lenient_mode_accepts_credit_queries(client) -> None:
    client.configure(strict=False)
    assert client.call(CREDIT, {}, params={"aid": "513695"})["ret"] == "0"
    assert client.stats()["violations"] == []


# -- risk control: webId vs _tea_web_id ----------------------------------------------
def _cookie(web_id: str, session: str = "sim-session-1") -> dict[str, str]:
    return {"Cookie": f"_tea_web_id={web_id}; sessionid={session}"}


def test_web_id_must_match_the_cookie(client) -> None:
    assert client.history(["1"], headers=_cookie(WEB_ID))["ret"] == "0"
    body = client.history(["1"], headers=_cookie("7000000000000000001"))
    assert body["ret"] == "4013"
    assert body["data"]["fail_starling_key"] == (
        "web_risk_control_message_reject_generation"
    )
    violation = client.stats()["violations"][-1]
    assert violation["endpoint"] == "history" and "_tea_web_id" in violation["reason"]
    assert client.generate(headers=_cookie("1"))["ret"] == "4013"
    assert client.stats()["submissions"] == 0


def test_web_id_spelling_of_o_is_compared_too(client) -> None:
    params = {"aid": "513695", "device_platform": "web", "region": "CN", "web_id": "5"}
    assert client.history(["1"], params=params, headers=_cookie("6"))["ret"] == "4013"
    assert client.history(["1"], params=params, headers=_cookie("5"))["ret"] == "0"


def test_passport_risk_uses_the_passport_envelope(client) -> None:
    body = client.call(PASSPORT, headers=_cookie("1"))
    assert "ret" not in body and body["data"]["error_code"] == 4013


# -- risk control: Origin / Referer ----------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"Origin": SITE}, True),
        ({"Origin": SITE + "/"}, True),
        ({"Referer": SITE}, True),
        ({"Referer": SITE + "/ai-tool/image/generate"}, True),
        ({"Origin": SITE, "Referer": SITE + "/ai-tool/generate?type=image"}, True),
        ({"Origin": "http://127.0.0.1:8001"}, False),
        ({"Referer": "http://127.0.0.1:8001/"}, False),
        ({"Referer": SITE + ".evil.example/x"}, False),
        ({"Origin": "https://relay.example"}, False),
    ],
)
def test_origin_and_referer_must_be_the_sites(client, headers, ok) -> None:
    expected = "0" if ok else "4013"
    assert client.history(["1"], headers=headers)["ret"] == expected
    assert client.call(CREDIT, {}, headers=headers)["ret"] == expected


def test_site_origin_knob(client) -> None:
    client.configure(site_origin="https://relay.example")
    assert (
        client.history(["1"], headers={"Origin": "https://relay.example"})["ret"] == "0"
    )
    assert client.history(["1"], headers={"Origin": SITE})["ret"] == "4013"


def test_lenient_mode_skips_risk_checks(client) -> None:
    client.configure(strict=False)
    headers = {"Origin": "http://127.0.0.1", **_cookie("1")}
    assert client.history(["1"], headers=headers)["ret"] == "0"
    assert client.stats()["violations"] == []
