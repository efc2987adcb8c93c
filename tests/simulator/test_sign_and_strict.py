"""Strict mode: Sign (§1.6 vectors), Device-Time, required params; min Appvr."""

from __future__ import annotations

import hashlib
import time

import pytest

from simulator import compute_sign

CREDIT = "/commerce/v1/benefits/user_credit"
GENERATE = "/mweb/v1/aigc_draft/generate"
HISTORY = "/mweb/v1/get_history_by_ids"

# (path, Appvr, Device-Time, expected MD5) from the §1.6 table
SIGN_VECTORS = [
    (CREDIT, "5.8.0", "1733966964", "f3dbb824b378abea7c03cbb152b3a365"),
    (GENERATE, "8.4.0", "1771893826", "19724735691862919106b8c4808a6ce7"),
    (HISTORY, "8.4.0", "1771893831", "656c1e00cf94dfd5bcfaf031e32493e4"),
    (
        "/commerce/v1/benefits/user_credit_history",
        "8.4.0",
        "1771893831",
        "e689d5fa536721dee8945eaa6efb01b0",
    ),
    (GENERATE, "5.8.0", "1700000000", "ae3b32f5eac9141aae9ff491a3bd4c7c"),
    (HISTORY, "5.8.0", "1700000000", "9e99ef695c30983f8eb22036fb164009"),
    (
        "/commerce/v1/benefits/credit_receive",
        "5.8.0",
        "1700000000",
        "71879a52ca8f167d30c516cc0e902774",
    ),
    (
        "/passport/account/info/v2",
        "5.8.0",
        "1700000000",
        "0c940359032a9b46ee792a23c0b1d22b",
    ),
    (
        "/mweb/v1/get_upload_token",
        "5.8.0",
        "1700000000",
        "73778fc3d172e49a6459181a5cdf21f3",
    ),
]


@pytest.mark.parametrize(("path", "appvr", "device_time", "md5"), SIGN_VECTORS)
def test_sign_vectors(path: str, appvr: str, device_time: str, md5: str) -> None:
    assert compute_sign(path, "7", appvr, device_time) == md5
    text = f"9e2c|{path[-7:]}|7|{appvr}|{device_time}||11ac"
    assert hashlib.md5(text.encode()).hexdigest() == md5


def _credit(client, headers=None, params=None):
    return client.call(CREDIT, {}, headers=headers, params=params)


def test_valid_sign_accepted_without_violation(client) -> None:
    assert _credit(client)["ret"] == "0"
    assert client.history(["1"])["ret"] == "0"
    assert client.stats()["violations"] == []


def test_sign_checked_against_the_requests_own_headers(client) -> None:
    # A different Appvr/Device-Time is fine as long as Sign matches them.
    now = str(int(time.time()) - 100)
    headers = {
        "Appvr": "5.8.0",
        "Device-Time": now,
        "Sign": compute_sign(CREDIT, "7", "5.8.0", now),
    }
    assert _credit(client, headers)["ret"] == "0"


def test_bad_sign_is_refused_and_recorded(client) -> None:
    body = _credit(client, {"Sign": "0" * 32})
    assert (body["ret"], body["errmsg"]) == ("1014", "sign error")
    violations = client.stats()["violations"]
    assert len(violations) == 1
    assert violations[0]["endpoint"] == "user_credit"
    assert "Sign mismatch" in violations[0]["reason"]


def test_sign_of_a_path_with_query_is_refused(client) -> None:
    # [ZZ]'s quirk: signing the path plus its query string.
    dt = str(int(time.time()))
    sign = compute_sign(GENERATE + "?aid=513695", "7", "8.4.0", dt)
    result = client.generate(headers={"Device-Time": dt, "Sign": sign})
    assert result["ret"] == "1014"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Device-Time": str(int(time.time()) - 3600)}, "Device-Time off"),
        ({"Device-Time": str(int(time.time() * 1000))}, "Device-Time off"),
        ({"Sign-Ver": "2"}, "Sign-Ver"),
        ({"Pf": ""}, "missing header Pf"),
        ({"Appid": ""}, "missing header Appid"),
    ],
)
def test_header_violations(client, headers, reason) -> None:
    if "Device-Time" in headers:  # keep the Sign consistent with the bad time
        headers["Sign"] = compute_sign(HISTORY, "7", "8.4.0", headers["Device-Time"])
    assert client.history(["1"], headers=headers)["ret"] == "1014"
    assert reason in client.stats()["violations"][-1]["reason"]


@pytest.mark.parametrize("missing", ["aid", "device_platform", "region", "webId"])
def test_required_query_params(client, missing) -> None:
    params = client.default_params(HISTORY)
    del params[missing]
    assert client.history(["1"], params=params)["ret"] == "1014"
    assert client.stats()["violations"][-1]["endpoint"] == "history"


def test_web_id_spelling_of_o_is_accepted(client) -> None:
    params = {"aid": "513695", "device_platform": "web", "region": "CN"}
    params["web_id"] = "7756147496321299000"
    assert client.history(["1"], params=params)["ret"] == "0"


def test_commerce_without_query_ok_but_sign_required(client) -> None:
    assert _credit(client, params={})["ret"] == "0"
    assert _credit(client, {"Sign": "bad"}, params={})["ret"] == "1014"


def test_passport_strict_violation_uses_passport_envelope(client) -> None:
    body = client.call("/passport/account/info/v2", headers={"Sign": "x"})
    assert "ret" not in body
    assert body["message"] == "error"
    assert body["data"]["error_code"] == 1014
    assert client.stats()["violations"][-1]["endpoint"] == "passport"


def test_lenient_mode_ignores_sign(client) -> None:
    client.configure(strict=False)
    assert _credit(client, {"Sign": "nonsense"}, params={})["ret"] == "0"
    assert client.history(["1"], params={}, headers={"Sign-Ver": ""})["ret"] == "0"
    assert client.stats()["violations"] == []


def test_min_appvr_refuses_old_clients(client) -> None:
    client.configure(min_appvr="8.0.0")
    old = client.sign_headers(GENERATE, appvr="5.8.0")
    body = client.generate(headers=old)
    assert (body["ret"], body["errmsg"]) == ("3018", "permission denied")
    old_credit = client.sign_headers(CREDIT, appvr="5.8.0")
    assert _credit(client, old_credit)["ret"] == "3018"
    assert client.generate()["ret"] == "0"  # 8.4.0 passes
    assert client.sign_headers(GENERATE, appvr="10.0.0")["Appvr"] == "10.0.0"
    new = client.sign_headers(GENERATE, appvr="10.0.0")
    assert client.generate(headers=new)["ret"] == "0"  # numeric, not text order
