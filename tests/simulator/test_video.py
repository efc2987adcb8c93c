"""Video on the simulator: the draft's checks, its timeline, credits from the
paid pool, 4013 and 2061, get_local_item_list and the MP4 behind the URLs.

The bodies are built here from protocol doc §6.2, not with the product's client.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid

import pytest
import requests

from simulator.mp4 import boxes, render_mp4

GENERATE = "/mweb/v1/aigc_draft/generate"
LOCAL_ITEMS = "/mweb/v1/get_local_item_list"
S25 = "dreamina_seedance_45_pro"
S20_PRO = "dreamina_seedance_40_pro"
RETIRED = "dreamina_ic_generate_video_model_vgfm_3.0"


def _compact(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def video_body(
    prompt="a fox running",
    model=S25,
    duration_ms=5000,
    ratio="16:9",
    resolution="720p",
    first_uri=None,
):
    node = lambda **f: {"type": "", "id": str(uuid.uuid4()), **f}  # noqa: E731
    inputs = node(prompt=prompt, video_mode=2, fps=24, duration_ms=duration_ms,
                  resolution=resolution, idip_meta_list=[])  # fmt: skip
    if first_uri:
        inputs["first_frame_image"] = {"type": "image", "image_uri": first_uri,
                                       "uri": first_uri}  # fmt: skip
    params = node(video_gen_inputs=[inputs], video_aspect_ratio=ratio, seed=7,
                  model_req_key=model, priority=0)  # fmt: skip
    component_id = str(uuid.uuid4())
    draft = {
        "type": "draft", "id": str(uuid.uuid4()), "min_version": "3.0.5",
        "version": "3.3.9", "main_component_id": component_id,
        "component_list": [{
            "type": "video_base_component", "id": component_id,
            "generate_type": "gen_video", "aigc_mode": "workbench",
            "abilities": node(gen_video=node(text_to_video_params=params)),
        }],
    }  # fmt: skip
    commerce = {"benefit_type": "seedance_25_720p_output",
                "resource_id": "generate_video"}  # fmt: skip
    return {
        "extend": {"root_model": model, "m_video_commerce_info": commerce,
                   "m_video_commerce_info_list": [commerce]},
        "submit_id": str(uuid.uuid4()),
        "metrics_extra": _compact({"functionMode": "first_last_frames"}),
        "draft_content": _compact(draft),
        "http_common_info": {"aid": 513695},
    }  # fmt: skip


def paid(client, session=None, purchase=100, vip=0) -> None:
    body = {"session": session or client.session, "gift_credit": 100,
            "purchase_credit": purchase, "vip_credit": vip}  # fmt: skip
    client.sim("credits", body)


def submit(client, **kwargs) -> str:
    result = client.call(GENERATE, video_body(**kwargs))
    assert result["ret"] == "0", result
    return result["data"]["aigc_data"]["history_record_id"]


def finish(client, history_id) -> dict:
    client.sim("clock", {"advance": 120})
    return client.history([history_id])["data"][history_id]


def mvhd(data: bytes) -> tuple[int, int]:
    """(timescale, duration) of an MP4's movie header."""
    moov = next(b for b in boxes(data) if b[0] == b"moov")
    at = data.index(b"mvhd", moov[1]) + 4 + 4  # type, version+flags
    return struct.unpack(">II", data[at + 8 : at + 16])


def test_a_video_runs_20_then_50_with_one_mp4_item(client) -> None:
    paid(client)
    history_id = submit(client, ratio="9:16", duration_ms=6000)
    record = client.history([history_id])["data"][history_id]
    assert record["status"] == 20 and record["item_list"] == []
    client.sim("clock", {"advance": 5})
    assert client.history([history_id])["data"][history_id]["status"] == 20
    record = finish(client, history_id)
    assert record["status"] == 50 and record["task"]["status"] == 50
    (item,) = record["item_list"]
    url = item["video"]["transcoded_video"]["origin"]["video_url"]
    assert item["video"]["play_url"] == url and "/vid/" in url
    assert item["common_attr"]["cover_url"].split("?")[0].endswith(".png")
    assert (item["video"]["width"], item["video"]["height"]) == (720, 1280)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert [b[0] for b in boxes(response.content)] == [b"ftyp", b"moov", b"mdat"]
    assert mvhd(response.content) == (1000, 6000)
    task = client.sim(f"tasks/{history_id}")
    assert task["kind"] == "video" and task["gen_count"] == 1


def test_the_mp4_answers_range_requests_and_checks_its_signature(client) -> None:
    paid(client)
    record = finish(client, submit(client))
    url = record["item_list"][0]["video"]["play_url"]
    whole = requests.get(url, timeout=10).content
    part = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=10)
    assert part.status_code == 206 and part.content == whole[:100]
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(whole)}"
    forged = url.replace("x-signature=", "x-signature=AA")
    assert requests.get(forged, timeout=10).status_code == 403


def test_a_queued_video_shows_queue_info(client) -> None:
    paid(client)
    client.configure(queue_seconds=60, seed=3)
    history_id = submit(client)
    record = client.history([history_id])["data"][history_id]
    assert record["status"] == 20 and record["queue_info"]["queue_idx"] >= 1


def test_gift_credits_do_not_pay_for_video(client) -> None:
    client.sim("credits", {"session": client.session, "credits": 500})  # gift only
    result = client.call(GENERATE, video_body())
    assert result["ret"] == "1006"
    assert result["errmsg"] == "Not enough credits left or no relevant benefits"
    assert result["data"]["fail_code"] == "1006"
    assert client.stats()["submissions"] == 0
    credits = client.stats()["credits"][client.session]
    assert credits["gift_credit"] == 500  # nothing charged


def test_a_video_is_paid_from_purchased_credits(client) -> None:
    paid(client, purchase=25)
    submit(client)
    credits = client.stats()["credits"][client.session]
    assert (credits["gift_credit"], credits["purchase_credit"]) == (100, 15)


def test_gift_credits_pay_when_the_knob_says_so(client) -> None:
    client.configure(video_gift_spendable=True)
    client.sim("credits", {"session": client.session, "credits": 30})
    submit(client)
    assert client.stats()["credits"][client.session]["gift_credit"] == 20


def test_seedance_2_0_pro_without_browser_tokens_gets_4013(client) -> None:
    paid(client)
    result = client.call(GENERATE, video_body(model=S20_PRO))
    assert result["ret"] == "4013"
    assert result["data"]["fail_starling_key"] == (
        "web_risk_control_message_reject_generation"
    )
    assert client.stats()["submissions"] == 0
    params = {**client.default_params(GENERATE), "a_bogus": "x" * 16}
    accepted = client.call(GENERATE, video_body(model=S20_PRO), params=params)
    assert accepted["ret"] == "0"


def test_retired_video_models_get_2061(client) -> None:
    paid(client)
    result = client.call(GENERATE, video_body(model=RETIRED))
    assert (result["ret"], result["errmsg"]) == ("2061", "model no longer available")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ratio": "5:4"}, "video_aspect_ratio"),
        ({"duration_ms": 20000}, "duration_ms"),
        ({"resolution": "4k"}, "resolution"),
        ({"model": "dreamina_unknown_video"}, "unknown video model"),
        ({"first_uri": "tos-cn-i-tb4s082cfz/not-uploaded"}, "unknown"),
    ],
)
def test_bad_video_drafts_get_1000(client, change, reason) -> None:
    paid(client)
    result = client.call(GENERATE, video_body(**change))
    assert result["ret"] == "1000"
    assert reason in client.stats()["rejections"][-1]["reason"]


def test_local_items_give_vip_accounts_the_hq_file(client) -> None:
    paid(client, purchase=100, vip=50)
    record = finish(client, submit(client))
    item_id = record["item_list"][0]["common_attr"]["id"]
    body = {"item_id_list": [item_id], "is_for_video_download": True}
    (item,) = client.call(LOCAL_ITEMS, body)["data"]["item_list"]
    model = json.loads(item["video"]["video_model"])
    hq = base64.b64decode(model["video_list"]["video_1"]["main_url"]).decode()
    assert "/hq.mp4?" in hq
    assert item["video"]["transcoded_video"]["origin"]["video_url"] == hq
    play = requests.get(record["item_list"][0]["video"]["play_url"], timeout=10)
    assert len(requests.get(hq, timeout=10).content) > len(play.content)


def test_local_items_give_others_the_play_file_and_hide_other_sessions(
    client,
) -> None:
    paid(client)
    record = finish(client, submit(client))
    item_id = record["item_list"][0]["common_attr"]["id"]
    body = {"item_id_list": [item_id]}
    (item,) = client.call(LOCAL_ITEMS, body)["data"]["item_list"]
    assert item["video"]["video_model"] is None
    assert "/play.mp4?" in item["video"]["transcoded_video"]["origin"]["video_url"]
    other = client.call(LOCAL_ITEMS, body, session="sim-session-2")
    assert other["data"]["item_list"] == []


def test_render_mp4_is_a_valid_h264_file() -> None:
    data = render_mp4("key", 96, 54, 4)
    kinds = [b[0] for b in boxes(data)]
    assert kinds == [b"ftyp", b"moov", b"mdat"] and b"avcC" in data
    assert mvhd(data) == (1000, 4000)
    av = pytest.importorskip("av")  # decode it when PyAV is at hand
    import io

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    assert (stream.codec_context.name, stream.width, stream.height) == (
        "h264", 96, 54
    )  # fmt: skip
    assert len(frames) == 4
