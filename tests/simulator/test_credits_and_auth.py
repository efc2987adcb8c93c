"""Credits (user_credit, credit_receive, 1006/5000), sessions (1015), passport."""

from __future__ import annotations

import pytest

from simulator.testing import SimClient

CREDIT = "/commerce/v1/benefits/user_credit"
RECEIVE = "/commerce/v1/benefits/credit_receive"
ZONE = {"time_zone": "Asia/Shanghai"}


def _credit(client: SimClient) -> dict:
    return client.call(CREDIT, {})["data"]["credit"]


def test_user_credit_commerce_envelope(client) -> None:
    body = client.call(CREDIT, {})
    assert set(body) == {
        "ret",
        "errmsg",
        "svr_time",
        "log_id",
        "response",
        "sign",
        "data",
    }
    assert body["ret"] == "0" and isinstance(body["svr_time"], int)
    assert body["data"]["credit"] == {
        "vip_credit": 0,
        "gift_credit": 100,
        "purchase_credit": 0,
    }
    import json

    assert json.loads(body["response"]) == body["data"]


def test_generation_charges_credits(client) -> None:
    client.submit()
    assert _credit(client)["gift_credit"] == 99
    client.configure(generation_cost=2, cost_per_image=True)
    client.submit(gen_count=3)
    assert _credit(client)["gift_credit"] == 93
    assert client.stats()["credits"]["sim-session-1"]["total"] == 93


def test_insufficient_credits_1006(client) -> None:
    client.sim("credits", {"session": "sim-session-1", "credits": 0})
    body = client.generate()
    assert (body["ret"], body["errmsg"]) == ("1006", "积分不足")
    assert body["data"] == {
        "aigc_data": None,
        "fail_code": "1006",
        "fail_starling_key": "web_dre_m10n_generate_popup_credit_ininsufficient_title",
        "fail_starling_message": "积分不足",
    }
    assert client.stats()["submissions"] == 0


def test_insufficient_credits_legacy_5000(client) -> None:
    client.configure(legacy_credits=True, initial_credits=0)
    body = client.generate()
    assert body["ret"] == "5000"


def test_credits_spent_from_every_bucket(client) -> None:
    client.sim(
        "credits",
        {
            "session": "sim-session-1",
            "gift_credit": 1,
            "purchase_credit": 1,
            "vip_credit": 0,
        },
    )
    client.submit()
    client.submit()
    assert client.generate()["ret"] == "1006"
    assert _credit(client) == {"vip_credit": 0, "gift_credit": 0, "purchase_credit": 0}


def test_daily_grant_once_per_day(client) -> None:
    client.configure(initial_credits=0)
    first = client.call(RECEIVE, ZONE)
    assert first["ret"] == "0"
    assert first["data"] == {
        "is_first_receive": True,
        "receive_quota": 60,
        "has_popup": True,
        "cur_total_credits": 60,
    }
    again = client.call(RECEIVE, ZONE)
    assert (again["ret"], again["errmsg"]) == ("1014", "system busy")
    assert _credit(client)["gift_credit"] == 60
    client.sim("clock", {"advance": 86400})
    next_day = client.call(RECEIVE, ZONE)
    assert next_day["ret"] == "0"
    assert next_day["data"]["is_first_receive"] is False
    assert next_day["data"]["cur_total_credits"] == 120


def test_daily_grant_is_per_session(client, sim) -> None:
    assert client.call(RECEIVE, ZONE)["ret"] == "0"
    with SimClient(sim.base_url, session="second") as other:
        assert other.call(RECEIVE, ZONE)["ret"] == "0"


def test_grant_day_uses_the_injected_clock(client, sim) -> None:
    sim.state.clock.set(1_700_000_000)  # 2023-11-15 06:13 Asia/Shanghai
    assert client.call(RECEIVE, ZONE)["ret"] == "0"
    sim.state.clock.advance(17 * 3600)  # 23:13 the same day
    assert client.call(RECEIVE, ZONE)["ret"] == "1014"
    sim.state.clock.advance(3600)  # 00:13 the next day
    assert client.call(RECEIVE, ZONE)["ret"] == "0"


def test_credit_receive_needs_time_zone(client) -> None:
    assert client.call(RECEIVE, {})["ret"] == "34010100"


ENDPOINTS = [
    ("/mweb/v1/aigc_draft/generate", {}),
    ("/mweb/v1/get_history_by_ids", {"history_ids": ["1"]}),
    ("/mweb/v1/get_upload_token", {"scene": 2}),
    (CREDIT, {}),
    (RECEIVE, ZONE),
]


@pytest.mark.parametrize("session", ["", "invalid", "invalid-abc"])
@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
def test_invalid_session_1015(client, path, body, session) -> None:
    result = client.call(path, body, session=session)
    assert (result["ret"], result["errmsg"]) == ("1015", "login error")
    assert result["data"] is None


def test_missing_cookie_1015(client) -> None:
    headers = {**client.sign_headers(CREDIT)}
    response = client.http.post(client.base_url + CREDIT, json={}, headers=headers)
    assert response.json()["ret"] == "1015"


def test_full_o_cookie_string_accepted(client) -> None:
    cookie = (
        "_tea_web_id=7756147496321299000; is_staff_user=false; store-region=cn-gd; "
        "store-region-src=uid; sid_guard=abc123%7C1733966964%7C5184000%7CMon%2C+03"
        "-Feb-2025+08%3A17%3A09+GMT; uid_tt=0123456789abcdef0123456789abcdef; "
        "uid_tt_ss=0123456789abcdef0123456789abcdef; sid_tt=abc123; "
        "sessionid=abc123; sessionid_ss=abc123; sid_tt=abc123"
    )
    body = client.call(CREDIT, {}, headers={"Cookie": cookie})
    assert body["ret"] == "0"
    assert "abc123" in client.stats()["credits"]


def test_passport_live_and_invalid(client) -> None:
    live = client.call("/passport/account/info/v2")
    assert "ret" not in live and live["message"] == "success"
    assert isinstance(live["data"]["user_id"], int) and live["data"]["user_id"] > 0
    dead = client.call("/passport/account/info/v2", session="invalid-x")
    assert "ret" not in dead and dead["message"] == "error"
    assert "user_id" not in dead["data"]
    assert isinstance(dead["data"]["error_code"], int)
    assert dead["data"]["description"]


def test_concurrency_limit_1010(client) -> None:  # the pre-2026 answer, by knob
    client.configure(
        max_running_per_session=2, task_seconds=100, parallel_limit_ret="1010"
    )
    client.submit()
    client.submit()
    body = client.generate()
    assert (body["ret"], body["errmsg"]) == ("1010", "concurrency limit")
    assert client.stats()["submissions"] == 2
    client.sim("clock", {"advance": 200})  # both finish
    assert client.generate()["ret"] == "0"
