"""aigc_draft/generate: body validation, both draft shapes, gen_count, ids."""

from __future__ import annotations

import json

import pytest

from simulator import KNOWN_MODELS
from simulator.testing import V30, V50, draft_v1, draft_v2, generate_body

GENERATE = "/mweb/v1/aigc_draft/generate"


def _post(client, body):
    return client.call(GENERATE, body)


def test_v1_draft_success_shape(client) -> None:
    body = generate_body(draft_v1("a cat"), submit_id="sub-123")
    result = _post(client, body)
    assert result["ret"] == "0" and result["errmsg"] == "success"
    assert set(result) == {"ret", "errmsg", "systime", "logid", "data"}
    assert isinstance(result["systime"], str) and result["systime"].isdigit()
    aigc = result["data"]["aigc_data"]
    assert aigc["history_record_id"].isdigit()
    assert aigc["task"]["submit_id"] == "sub-123"
    assert aigc["task"]["status"] == 20


def test_history_ids_are_unique_digit_strings(client) -> None:
    ids = {client.submit() for _ in range(5)}
    assert len(ids) == 5 and all(i.isdigit() for i in ids)


def test_all_known_models_accepted(client) -> None:
    client.configure(initial_credits=1000)
    for model in KNOWN_MODELS:
        assert client.generate(draft=draft_v2("x", model=model))["ret"] == "0", model


@pytest.mark.parametrize("key", ["draft_content", "metrics_extra"])
def test_json_objects_instead_of_strings_refused(client, key) -> None:
    body = generate_body(draft_v2("a cat"))
    body[key] = json.loads(body[key])
    result = _post(client, body)
    assert (result["ret"], result["errmsg"]) == ("1002", "common error")


def test_draft_not_json_refused(client) -> None:
    body = generate_body(draft_v2("a cat"))
    body["draft_content"] = "{not json"
    assert _post(client, body)["ret"] == "1002"


def test_metrics_extra_may_be_absent(client) -> None:  # [ZZ] blend sends none
    body = generate_body(draft_v2("a cat"))
    del body["metrics_extra"]
    assert _post(client, body)["ret"] == "0"


def _core(draft):
    return draft["component_list"][0]["abilities"]["generate"]["core_param"]


def test_root_model_must_match_core_param(client) -> None:
    body = generate_body(draft_v2("a cat", model=V50), model=V30)
    result = _post(client, body)
    assert (result["ret"], result["errmsg"]) == ("1000", "invalid parameter")
    assert "root_model" in client.stats()["rejections"][-1]["reason"]


def test_unknown_model_refused(client) -> None:
    assert client.generate(draft=draft_v2("x", model="jimeng-3.0"))["ret"] == "1000"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("width", 32),
        ("width", 9000),
        ("height", "1024"),
        ("height", None),
        ("width", 1024.0),
    ],
)
def test_bad_sizes_refused(client, field, value) -> None:
    draft = draft_v2("a cat")
    _core(draft)["large_image_info"][field] = value
    assert client.generate(draft=draft)["ret"] == "1000"


@pytest.mark.parametrize("value", [-0.1, 1.5, "0.5", True])
def test_bad_sample_strength_refused(client, value) -> None:
    draft = draft_v1("a cat")
    _core(draft)["sample_strength"] = value
    assert client.generate(draft=draft)["ret"] == "1000"


def test_missing_prompt_refused(client) -> None:  # Q20: undefined prompt dropped
    draft = draft_v1("a cat")
    del _core(draft)["prompt"]
    assert client.generate(draft=draft)["ret"] == "1000"


def _gen_count(client, hid):
    return client.sim(f"tasks/{hid}")["gen_count"]


def test_gen_count_default_and_both_locations(client) -> None:
    assert _gen_count(client, client.submit()) == 4
    assert _gen_count(client, client.submit(gen_count=2)) == 2
    assert _gen_count(client, client.submit(gen_count=1, inside_generate=True)) == 1
    assert _gen_count(client, client.submit(gen_count=8)) == 8


@pytest.mark.parametrize("count", [0, 9, "4", 2.5])
def test_bad_gen_count_refused(client, count) -> None:
    assert client.generate(draft=draft_v2("x", gen_count=count))["ret"] == "1000"


def test_gen_count_images_delivered(client) -> None:
    hid = client.submit(gen_count=3)
    record = client.wait(hid)
    assert record["status"] == 50
    assert record["total_image_count"] == record["finished_image_count"] == 3
    assert len(record["item_list"]) == 3


def test_invalid_json_body_refused(client) -> None:
    response = client.post(GENERATE, headers={"Content-Type": "application/json"})
    assert response.json()["ret"] == "1002"


def test_get_method_not_allowed(client) -> None:
    response = client.http.get(client.base_url + GENERATE, timeout=5)
    assert response.status_code == 405
