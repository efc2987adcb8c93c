"""Fault knobs: 5xx HTML, reset, slow, non-JSON, numeric ret, missing item_list…"""

from __future__ import annotations

import json

import pytest
import requests

CREDIT = "/commerce/v1/benefits/user_credit"
HISTORY = "/mweb/v1/get_history_by_ids"


def test_http_5xx_with_html_body(client) -> None:
    client.configure(fault_http_5xx=1.0)
    response = client.post(CREDIT, {})
    assert response.status_code in (502, 503)
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.lstrip().startswith("<html>")
    assert client.stats()["faults"]["http_5xx"] == 1


def test_reset_closes_the_connection(client) -> None:
    client.configure(fault_reset=1.0)
    with pytest.raises(requests.ConnectionError):
        client.post(CREDIT, {})
    client.configure(fault_reset=0.0)
    assert client.call(CREDIT, {})["ret"] == "0"  # the server survives
    assert client.stats()["faults"]["reset"] == 1


def test_slow_answer_beyond_the_read_timeout(client) -> None:
    client.configure(fault_slow=1.0, slow_seconds=1.0)
    with pytest.raises(requests.ReadTimeout):
        client.post(CREDIT, {}, timeout=0.3)
    body = client.call(CREDIT, {}, timeout=5)  # a patient client gets the answer
    assert body["ret"] == "0"


def test_non_json_body(client) -> None:
    client.configure(fault_non_json=1.0)
    response = client.post(CREDIT, {})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_numeric_ret(client) -> None:
    client.configure(fault_numeric_ret=1.0)
    body = client.call(CREDIT, {})
    assert body["ret"] == 0 and body["ret"] != "0"
    refused = client.call(CREDIT, {}, session="")
    assert refused["ret"] == 1015


def test_missing_item_list(client) -> None:
    hid = client.submit()
    client.sim("clock", {"advance": 60})
    client.configure(fault_missing_item_list=1.0)
    record = client.history([hid])["data"][hid]
    assert record["status"] == 50 and "item_list" not in record


def test_string_status(client) -> None:
    hid = client.submit()
    client.configure(fault_string_status=1.0)
    record = client.history([hid])["data"][hid]
    assert record["status"] == "20" and record["task"]["status"] == "20"


def test_null_aigc_data(client) -> None:
    client.configure(fault_null_aigc_data=1.0)
    body = client.generate()
    assert body["ret"] == "0" and body["data"]["aigc_data"] is None


def test_fault_scope_limits_endpoints(client) -> None:
    client.configure(fault_http_5xx=1.0, fault_scope="history")
    assert client.call(CREDIT, {})["ret"] == "0"
    hid = client.submit()
    assert client.post(HISTORY, {"history_ids": [hid]}).status_code >= 500
    client.configure(fault_scope=["commerce", "generate"])
    assert client.post(CREDIT, {}).status_code >= 500
    assert client.history([hid])["ret"] == "0"


def test_fault_rate_is_a_probability(client) -> None:
    client.configure(fault_http_5xx=0.5, seed=3)
    codes = [client.post(CREDIT, {}).status_code for _ in range(40)]
    assert 5 < sum(c >= 500 for c in codes) < 35


def test_faults_count_calls_and_do_not_create_tasks(client) -> None:
    client.configure(fault_http_5xx=1.0)
    client.post("/mweb/v1/aigc_draft/generate", {})
    stats = client.stats()
    assert stats["calls"]["generate"] == 1 and stats["submissions"] == 0


def test_bad_config_rejected(client) -> None:
    response = client.http.post(
        client.base_url + "/__sim/config", json={"fault_reset": 2}, timeout=5
    )
    assert response.status_code == 400
    response = client.http.post(
        client.base_url + "/__sim/config", json={"no_such_knob": 1}, timeout=5
    )
    assert response.status_code == 400
