"""Video generation: OpenAI's Videos API through the official SDK over real
gunicorn + gevent on the simulator, the forks' synchronous endpoint, chat
``jimeng-video-*``, and the pieces underneath (model mapping, the draft, the
records, the errors) without a server.

Every server test counts what the simulator accepted and charged."""

from __future__ import annotations

import base64
import io
import json
import struct
import time

import openai
import pytest
import requests
from PIL import Image

from jimeng_api.upstream.records import parse_record
from jimeng_api.upstream.video import (
    VIDEO_MODELS,
    BrowserTokensRequiredError,
    get_video_model,
    video_submit_error,
)
from jimeng_api.upstream.video_drafts import VideoDraft, video_body
from jimeng_api.upstream.video_items import hq_urls
from jimeng_api.videos import (
    OPENAI_SECONDS,
    OPENAI_SIZES,
    model_sizes,
    resolve_seconds,
    resolve_shape,
    video_object,
)
from simulator.mp4 import boxes
from tests.servers import api_env, gunicorn_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Sora API

S25 = "dreamina_seedance_45_pro"
CREATED = 1_790_000_000


# --- helpers --------------------------------------------------------------------------


def png(width: int = 64, height: int = 36, colour=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def mp4_info(data: bytes) -> tuple[int, int, int]:
    """(duration in ms, width, height) of an MP4 from its mvhd and tkhd."""
    assert [b[0] for b in boxes(data)] == [b"ftyp", b"moov", b"mdat"]
    at = data.index(b"mvhd") + 8
    timescale, duration = struct.unpack(">II", data[at + 8 : at + 16])
    at = data.index(b"tkhd") + 4 + 4 + 20 + 8 + 8 + 36
    width, height = struct.unpack(">II", data[at : at + 8])
    return duration * 1000 // timescale, width >> 16, height >> 16


def env(sim, data_dir, **extra):
    return api_env(
        sim,
        DATA_DIR=str(data_dir),
        LEASE_TTL="2",
        POLL_EXPECTED_SECONDS="1",
        POLL_FINISHING_INTERVAL="0.2",
        POLL_MIN_INTERVAL="0.2",
        SSE_KEEPALIVE_INTERVAL="0.3",
        JIMENG_IMAGEX_URL=sim.base_url,  # the simulator serves ImageX too
        **extra,
    )


def credits(sim, session, gift=0, purchase=0, vip=0) -> None:
    body = {"session": session, "gift_credit": gift, "purchase_credit": purchase,
            "vip_credit": vip}  # fmt: skip
    requests.post(sim.base_url + "/__sim/credits", json=body, timeout=10)


OPEN: list[openai.OpenAI] = []


def sdk(server, token) -> openai.OpenAI:
    client = openai.OpenAI(
        base_url=server.base_url + "/v1", api_key=token, timeout=60, max_retries=0
    )
    OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients():
    """Every SDK client a test made is closed after it (no stray sockets)."""
    yield
    while OPEN:
        OPEN.pop().close()


def sim_tasks(sim) -> list[dict]:
    stats = requests.get(sim.base_url + "/__sim/stats", timeout=10).json()
    return list(stats["tasks"].values())


@pytest.fixture(scope="module")
def server(sim, tmp_path_factory):
    """One gunicorn for the module (the simulator is reset for each test)."""
    with gunicorn_server(env(sim, tmp_path_factory.mktemp("videos"))) as running:
        yield running


@pytest.fixture
def vsim(fresh_sim):
    fresh_sim.configure(video_task_seconds=1.0, task_jitter=0.0)
    return fresh_sim


# --- OpenAI's Videos API over gunicorn ------------------------------------------------


@pytest.mark.server
def test_create_and_poll_then_download_through_the_sdk(vsim, server) -> None:
    credits(vsim, "video-sdk-1", gift=50, purchase=40)
    client = sdk(server, "video-sdk-1")
    video = client.videos.create_and_poll(
        prompt="a fox in snow", seconds="8", size="720x1280", poll_interval_ms=100
    )
    assert (video.status, video.progress, video.object) == ("completed", 100, "video")
    assert (video.model, video.seconds, video.size) == (
        "jimeng-video-seedance-2.5", "8", "720x1280"
    )  # fmt: skip
    assert video.expires_at > video.completed_at >= video.created_at
    assert video.error is None and video.prompt == "a fox in snow"
    content = client.videos.download_content(video.id)
    duration, width, height = mp4_info(content.content)
    assert duration == 8000 and height > width  # 9:16
    (task,) = sim_tasks(vsim)
    assert task["model"] == S25 and task["video"]["duration_ms"] == 8000
    assert (task["video"]["ratio"], task["video"]["resolution"]) == ("9:16", "720p")
    stats = vsim.stats()
    assert stats["submissions"] == 1
    assert stats["credits"]["video-sdk-1"]["purchase_credit"] == 30  # video_cost 10
    assert stats["credits"]["video-sdk-1"]["gift_credit"] == 50  # gift untouched


@pytest.mark.server
def test_content_answers_range_requests_and_lists_show_the_callers_own(
    vsim, server
) -> None:
    credits(vsim, "video-range-1", purchase=40)
    client = sdk(server, "video-range-1")
    video = client.videos.create_and_poll(prompt="waves", poll_interval_ms=100)
    url = f"{server.base_url}/v1/videos/{video.id}/content"
    auth = {"Authorization": "Bearer video-range-1"}
    whole = requests.get(url, headers=auth, timeout=30)
    assert whole.status_code == 200 and whole.headers["Content-Type"] == "video/mp4"
    part = requests.get(url, headers={**auth, "Range": "bytes=10-59"}, timeout=30)
    assert part.status_code == 206 and part.content == whole.content[10:60]
    assert part.headers["Content-Range"] == f"bytes 10-59/{len(whole.content)}"
    listed = client.videos.list(limit=10)
    assert [v.id for v in listed.data] == [video.id]
    thumbnail = requests.get(url + "?variant=thumbnail", headers=auth, timeout=10)
    assert thumbnail.status_code == 400 and thumbnail.json()["error"]["param"] == (
        "variant"
    )


@pytest.mark.server
def test_another_caller_sees_no_video_and_delete_forgets_it(vsim, server) -> None:
    credits(vsim, "video-owner-1", purchase=40)
    owner, stranger = sdk(server, "video-owner-1"), sdk(server, "video-stranger-1")
    video = owner.videos.create_and_poll(prompt="a lantern", poll_interval_ms=100)
    with pytest.raises(openai.NotFoundError):
        stranger.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        stranger.videos.download_content(video.id)
    with pytest.raises(openai.NotFoundError):
        stranger.videos.delete(video.id)
    assert stranger.videos.list().data == []
    deleted = owner.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        video.id, True, "video.deleted"
    )  # fmt: skip
    with pytest.raises(openai.NotFoundError):
        owner.videos.retrieve(video.id)


@pytest.mark.server
def test_first_and_last_frames_are_uploaded_with_the_account(vsim, server) -> None:
    credits(vsim, "video-frames-1", purchase=40)
    client = sdk(server, "video-frames-1")
    first = client.videos.create(
        prompt="from this frame", input_reference=("first.png", png(), "image/png")
    )
    response = requests.post(
        server.base_url + "/v1/videos",
        headers={"Authorization": "Bearer video-frames-1"},
        data={"prompt": "from one frame to the other", "seconds": "5"},
        files={
            "input_reference": ("a.png", png(colour=(0, 0, 200)), "image/png"),
            "last_frame": ("b.png", png(colour=(0, 200, 0)), "image/png"),
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    both = response.json()
    for video_id in (first.id, both["id"]):
        assert client.videos.poll(video_id, poll_interval_ms=100).status == "completed"
    frames = sorted(len(t["video"]["frames"]) for t in sim_tasks(vsim))
    assert frames == [1, 2]
    assert vsim.stats()["uploads"] == 3  # each frame went through ImageX


@pytest.mark.server
def test_seedance_2_0_pro_4013_fails_fast_naming_the_models_that_work(
    vsim, server
) -> None:
    for session in ("video-shark-1", "video-shark-2"):
        credits(vsim, session, purchase=40)
    client = sdk(server, "video-shark-1,video-shark-2")
    started = time.monotonic()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.videos.create(prompt="a dancer", model="jimeng-video-seedance-2.0")
    assert time.monotonic() - started < 5
    error = caught.value
    assert error.code == "browser_tokens_required"
    assert "jimeng-video-seedance-2.5" in error.message
    assert "browser" in error.message and "4013" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    stats = vsim.stats()
    assert stats["submissions"] == 0
    shark = [r for r in stats["rejections"] if r["ret"] == "4013"]
    assert len(shark) == 1  # the second account was not tried


@pytest.mark.server
def test_retired_models_get_a_clear_error(vsim, server) -> None:
    credits(vsim, "video-retired-1", purchase=40)
    client = sdk(server, "video-retired-1")
    with pytest.raises(openai.NotFoundError) as caught:
        client.videos.create(prompt="old", model="jimeng-video-3.0")
    assert caught.value.code == "model_retired"
    assert "jimeng-video-seedance-2.5" in caught.value.message
    assert vsim.stats()["calls"].get("generate", 0) == 0  # refused before Jimeng
    # a model the site retired since (ret 2061) says so too
    vsim.configure(retired_models=[S25])
    with pytest.raises(openai.NotFoundError) as caught:
        client.videos.create(prompt="new but gone")
    assert caught.value.code == "model_retired"
    assert "retired the video model 'jimeng-video-seedance-2.5' (ret 2061)" in (
        caught.value.message
    )


@pytest.mark.server
def test_gift_credits_do_not_pay_for_video_and_the_next_account_does(
    vsim, server
) -> None:
    credits(vsim, "video-gift-1", gift=500)
    credits(vsim, "video-paid-1", purchase=40)
    with pytest.raises(openai.RateLimitError) as caught:
        sdk(server, "video-gift-1").videos.create(prompt="free?")
    assert caught.value.code == "insufficient_quota"
    assert "gift" in caught.value.message
    both = sdk(server, "video-gift-1,video-paid-1")
    video = both.videos.create_and_poll(prompt="paid", poll_interval_ms=100)
    assert video.status == "completed"
    balances = vsim.stats()["credits"]
    assert balances["video-paid-1"]["purchase_credit"] == 30
    assert balances["video-gift-1"]["gift_credit"] == 500
    points = requests.post(
        server.base_url + "/token/points",
        headers={"Authorization": "Bearer video-gift-1,video-paid-1"},
        timeout=10,
    ).json()
    assert [p["points"]["videoCredit"] for p in points] == [0, 30]


@pytest.mark.server
def test_an_account_with_vip_credits_downloads_the_hq_file(vsim, server) -> None:
    credits(vsim, "video-vip-1", purchase=40, vip=10)
    credits(vsim, "video-plain-1", purchase=40)
    widths = []
    for token in ("video-vip-1", "video-plain-1"):
        client = sdk(server, token)
        video = client.videos.create_and_poll(prompt="a city", poll_interval_ms=100)
        widths.append(mp4_info(client.videos.download_content(video.id).content)[1])
    assert widths == [128, 64]  # the simulator's HQ file is twice the play file
    assert vsim.stats()["calls"]["local_items"] == 2


@pytest.mark.server
def test_the_synchronous_endpoint_keeps_the_connection_alive(vsim, server) -> None:
    vsim.configure(video_task_seconds=1.5)
    credits(vsim, "video-sync-1", purchase=40)
    auth = {"Authorization": "Bearer video-sync-1"}
    body = {"prompt": "a kite", "duration": 5, "ratio": "1:1", "resolution": "720p"}
    with requests.post(
        server.base_url + "/v1/videos/generations",
        json=body,
        headers=auth,
        stream=True,
        timeout=30,
    ) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json"
        raw = b"".join(response.iter_content(chunk_size=None))
    assert raw.startswith(b"\n")  # keep-alives before the answer
    result = json.loads(raw)
    assert result["created"] > 0 and result["data"][0]["revised_prompt"] == "a kite"
    with requests.get(result["data"][0]["url"], timeout=10) as video:
        assert mp4_info(video.content)[0] == 5000
    accepted = requests.post(
        server.base_url + "/v1/videos/generations",
        json=body,
        headers={**auth, "Prefer": "respond-async"},
        timeout=30,
    )
    assert accepted.status_code == 202
    assert accepted.headers["Location"] == f"/v1/tasks/{accepted.json()['id']}"


@pytest.mark.server
def test_chat_with_a_video_model_streams_progress_then_the_link(vsim, server) -> None:
    credits(vsim, "video-chat-1", purchase=40)
    client = sdk(server, "video-chat-1")
    with client.chat.completions.create(
        model="jimeng-video-seedance-2.5",
        messages=[{"role": "user", "content": "a red fox running"}],
        stream=True,
    ) as stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert "视频生成中" in text and "[video_0](http" in text
    assert "/vid/" in text


@pytest.mark.server
def test_a_video_job_survives_a_restart(vsim, tmp_path) -> None:
    vsim.configure(video_task_seconds=3.0)
    credits(vsim, "video-restart-1", purchase=40)
    settings = env(vsim, tmp_path, GUNICORN_GRACEFUL_TIMEOUT="1")
    with gunicorn_server(settings) as running:
        video = sdk(running, "video-restart-1").videos.create(prompt="durable")
        assert video.status in ("queued", "in_progress")
    with gunicorn_server(settings) as running:
        client = sdk(running, "video-restart-1")
        done = client.videos.poll(video.id, poll_interval_ms=100)
        assert done.status == "completed"
        assert mp4_info(client.videos.download_content(video.id).content)[0] == 5000
    assert vsim.stats()["submissions"] == 1


# --- bad input: a 400 naming the parameter, nothing sent ------------------------------

BAD_JSON = [
    ({}, "prompt"),
    ({"prompt": "  "}, "prompt"),
    ({"prompt": "x", "seconds": "7", "model": "jimeng-video-seedance-1.0-pro"},
     "seconds"),
    ({"prompt": "x", "seconds": "abc"}, "seconds"),
    ({"prompt": "x", "seconds": True}, "seconds"),
    ({"prompt": "x", "seconds": 30}, "seconds"),
    ({"prompt": "x", "size": "100x100"}, "size"),
    ({"prompt": "x", "size": "1280x720", "ratio": "16:9"}, "size"),
    ({"prompt": "x", "ratio": "5:4"}, "ratio"),
    ({"prompt": "x", "resolution": "4k"}, "resolution"),
    ({"prompt": "x", "model": "jimeng-video-seedance-2.5-draft",
      "resolution": "1080p"}, "resolution"),
    ({"prompt": "x", "seed": -1}, "seed"),
    ({"prompt": "x", "seed": "5"}, "seed"),
    ({"prompt": "x", "input_reference": 5}, "input_reference"),
    ({"prompt": "x", "input_reference": {"file_id": "file-1"}}, "input_reference"),
    ({"prompt": "x", "input_reference": "not base64 !!"}, "input_reference"),
    ({"prompt": "x", "input_reference": base64.b64encode(b"no image").decode()},
     "input_reference"),
    ({"prompt": "x", "last_frame": base64.b64encode(png()).decode()}, "last_frame"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "param"), BAD_JSON)
def test_each_bad_json_input_is_a_400_naming_it(client, body, param) -> None:
    response = client.post("/v1/videos", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == param


@pytest.mark.parametrize(
    ("form", "files", "param"),
    [
        ({"prompt": "x", "seed": "abc"}, {}, "seed"),
        ({"prompt": "x", "seconds": "9", "model": "jimeng-video-seedance-1.0-fast"},
         {}, "seconds"),
        ({"prompt": "x"}, {"input_reference": (io.BytesIO(b"text"), "a.txt")},
         "input_reference"),
        ({"prompt": "x"}, {"last_frame": (io.BytesIO(png()), "b.png")}, "last_frame"),
    ],
)  # fmt: skip
def test_each_bad_multipart_input_is_a_400_naming_it(
    client, form, files, param
) -> None:
    response = client.post(
        "/v1/videos", data={**form, **files}, content_type="multipart/form-data"
    )
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x", "duration": 7, "model": "jimeng-video-seedance-1.0-pro"},
         "duration"),
        ({"prompt": "x", "file_paths": ["a", "b", "c"]}, "file_paths"),
        ({"prompt": "x", "response_format": "b64_json"}, "response_format"),
        ({"prompt": "x", "filePaths": ["ftp://example.com/a.png"]}, "file_paths[0]"),
    ],
)  # fmt: skip
def test_the_synchronous_endpoint_names_bad_input_too(client, body, param) -> None:
    response = client.post("/v1/videos/generations", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["param"] == param


@pytest.mark.parametrize(
    ("query", "param"),
    [("limit=0", "limit"), ("limit=x", "limit"), ("order=up", "order")],
)
def test_bad_list_parameters_are_named(client, query, param) -> None:
    response = client.get("/v1/videos?" + query)
    assert response.status_code == 400 and response.json["error"]["param"] == param


def test_unknown_and_elsewhere_models_are_404_naming_the_model(client) -> None:
    for name, code in (("jimeng-video-nope", "model_not_found"),
                       ("jimeng-video-veo3", "model_not_available"),
                       ("jimeng-video-2.0-pro", "model_retired")):  # fmt: skip
        response = client.post("/v1/videos", json={"prompt": "x", "model": name})
        assert response.status_code == 404
        assert response.json["error"]["param"] == "model"
        assert response.json["error"]["code"] == code


# --- each model's duration and resolution mapping -------------------------------------


@pytest.mark.parametrize("model", VIDEO_MODELS, ids=lambda m: m.id)
def test_every_model_maps_openai_seconds_to_the_nearest_it_allows(model) -> None:
    for seconds in model.seconds:  # its own values are kept
        assert resolve_seconds(model, str(seconds)) == seconds
    for seconds in OPENAI_SECONDS:
        chosen = resolve_seconds(model, str(seconds))
        assert chosen in model.seconds
        assert abs(chosen - seconds) == min(abs(s - seconds) for s in model.seconds)
    assert resolve_seconds(model, None) == model.default_seconds in model.seconds


@pytest.mark.parametrize("model", VIDEO_MODELS, ids=lambda m: m.id)
def test_every_model_maps_openai_sizes_to_what_it_makes(model) -> None:
    portrait = {"720x1280", "1024x1792"}
    for size in OPENAI_SIZES:
        ratio, resolution = resolve_shape(model, size, None, None)
        assert resolution in model.resolutions
        assert ratio == ("9:16" if size in portrait else "16:9")
    for size, shape in model_sizes(model).items():  # its own sizes are kept
        assert resolve_shape(model, size, None, None) == shape
    default = resolve_shape(model, None, None, None)
    assert default == ("16:9", model.default_resolution)


def test_the_nearest_resolution_is_by_the_short_side() -> None:
    s25 = get_video_model("seedance-2.5")
    assert resolve_shape(s25, "1280x720", None, None) == ("16:9", "720p")
    assert resolve_shape(s25, "1792x1024", None, None) == ("16:9", "1080p")
    assert resolve_shape(s25, "854x480", None, None) == ("16:9", "480p")
    pro = get_video_model("jimeng-video-seedance-1.0-pro")
    assert resolve_shape(pro, "720x1280", None, None) == ("9:16", "1080p")
    assert [resolve_seconds(pro, s) for s in ("4", "8", "12")] == [5, 10, 10]


def test_old_ids_the_site_still_serves_are_aliases() -> None:
    assert get_video_model("jimeng-video-3.0-pro").id == "jimeng-video-seedance-1.0-pro"
    assert get_video_model("JIMENG-VIDEO-3.0-FAST").key.endswith("vgfm_3.0_fast")
    assert get_video_model("seedance-2.0-fast").key == "dreamina_seedance_40"


# --- the upstream pieces --------------------------------------------------------------


def _draft(**changes) -> VideoDraft:
    fields = dict(model_key=S25, prompt="p", duration_ms=8000, ratio="9:16",
                  resolution="1080p", send_resolution=True,
                  benefit_type="seedance_25_1080p_output", seed=42,
                  draft_version="3.3.9")  # fmt: skip
    return VideoDraft(**{**fields, **changes})


def test_the_video_body_is_the_draft_of_protocol_section_6() -> None:
    frame = {"uri": "tos-cn-i-tb4s082cfz/abc", "width": 64, "height": 36}
    body = json.loads(video_body(_draft(first_frame=frame), "sub-1", 513695))
    extend = body["extend"]
    assert extend["root_model"] == S25
    assert extend["m_video_commerce_info"]["benefit_type"] == "seedance_25_1080p_output"
    assert extend["m_video_commerce_info_list"] == [extend["m_video_commerce_info"]]
    assert body["submit_id"] == "sub-1" and body["http_common_info"] == {"aid": 513695}
    draft = json.loads(body["draft_content"])
    assert (draft["min_version"], draft["version"]) == ("3.0.5", "3.3.9")
    (component,) = draft["component_list"]
    assert component["type"] == "video_base_component"
    assert component["generate_type"] == "gen_video"
    params = component["abilities"]["gen_video"]["text_to_video_params"]
    assert (params["model_req_key"], params["video_aspect_ratio"], params["seed"]) == (
        S25, "9:16", 42
    )  # fmt: skip
    (inputs,) = params["video_gen_inputs"]
    assert (inputs["duration_ms"], inputs["resolution"], inputs["fps"]) == (
        8000, "1080p", 24
    )  # fmt: skip
    assert inputs["first_frame_image"]["image_uri"] == frame["uri"]
    assert "end_frame_image" not in inputs
    extra = json.loads(body["metrics_extra"])
    scene = json.loads(extra["sceneOptions"])[0]
    assert scene["modelReqKey"] == S25 and scene["videoDuration"] == 8
    assert scene["reportParams"]["extraVipFunctionKey"] == f"{S25}-1080p"


def test_a_model_without_resolution_sends_none() -> None:
    body = json.loads(video_body(_draft(send_resolution=False), "s", 1))
    inputs = json.loads(body["draft_content"])["component_list"][0]["abilities"]
    inputs = inputs["gen_video"]["text_to_video_params"]["video_gen_inputs"][0]
    assert "resolution" not in inputs


def test_a_video_record_yields_the_mp4_not_its_cover() -> None:
    item = {
        "common_attr": {"id": "761", "cover_url": "https://p3.byteimg.com/c.jpg"},
        "video": {"transcoded_video": {"origin": {
            "video_url": "https://v3-artist.vlabvod.com/a.mp4"}},
            "play_url": "https://v3-artist.vlabvod.com/play.mp4"},
    }  # fmt: skip
    record = parse_record({"status": 50, "item_list": [item]})
    assert record.urls == ["https://v3-artist.vlabvod.com/a.mp4"]
    assert record.video and record.item_ids == ["761"] and record.done
    asia = {"common_attr": {"id": 9, "transcoded_video": {"origin": {
        "video_url": "https://v9-dreamnia.jimeng.com/b.mp4"}}}}  # fmt: skip
    assert parse_record({"status": 10, "item_list": [asia]}).urls == [
        "https://v9-dreamnia.jimeng.com/b.mp4"
    ]
    failed = parse_record({"status": 30, "fail_code": "",
                           "model_info": {"model_req_key": S25}})  # fmt: skip
    assert "generate the video" in failed.error("h1").message


def test_hq_urls_decode_the_video_model_main_url() -> None:
    hq = "https://v26-dreamnia.jimeng.com/hq.mp4?x-expires=1"
    model = {"video_list": {
        "video_1": {"main_url": base64.b64encode(b"https://v1.jimeng.com/lo.mp4")
                    .decode(), "bitrate": 100},
        "video_2": {"main_url": base64.b64encode(hq.encode()).decode(),
                    "bitrate": 900},
    }}  # fmt: skip
    data = {
        "item_list": [{"item_id": "761", "video": {"video_model": json.dumps(model)}}]
    }
    assert hq_urls(data) == {"761": hq}
    plain = {"local_item_list": [{"id": "5", "video": {"download_url": hq}}]}
    assert hq_urls(plain) == {"5": hq}
    assert hq_urls(None) == {} and hq_urls({"item_list": [1, None]}) == {}


def test_4013_on_a_video_submit_is_not_an_account_failure() -> None:
    from jimeng_api.errors import PermissionDeniedError

    pro = _draft(model_key="dreamina_seedance_40_pro")
    error = video_submit_error(PermissionDeniedError("Jimeng error 4013: x."), pro)
    assert isinstance(error, BrowserTokensRequiredError)
    assert not isinstance(error, PermissionDeniedError)  # no failover, no cooldown
    assert error.status_code == 403 and error.retryable is False
    assert "jimeng-video-seedance-2.0 needs the browser" in error.message
    assert "jimeng-video-seedance-2.0," not in error.message.split("tokens:")[-1]


def test_the_video_object_follows_the_job() -> None:
    spec = {"model": "m", "seconds": "5", "size": "1280x720", "prompt": "p",
            "typical_seconds": 100}  # fmt: skip
    job = {"id": "task_1", "spec": spec, "status": "in_progress",
           "created_at": CREATED, "accepted_at": CREATED, "progress": {}}  # fmt: skip
    assert video_object(job, 60, now=CREATED + 50)["status"] == "in_progress"
    assert video_object(job, 60, now=CREATED + 50)["progress"] == 50
    queued = {**job, "progress": {"stage": "queued", "queue_position": 3}}
    assert video_object(queued, 60, now=CREATED + 50)["status"] == "queued"
    done = {**job, "status": "completed", "completed_at": CREATED + 90}
    shown = video_object(done, 60)
    assert (shown["progress"], shown["expires_at"]) == (100, CREATED + 150)
    failed = {**job, "status": "failed", "error": {"message": "no", "type": "t"}}
    assert video_object(failed, 60)["error"] == {
        "code": "t", "message": "no", "param": None, "type": "t"
    }  # fmt: skip


def test_a_multipart_retry_with_the_same_idempotency_key_is_the_same_job(
    client, upstream
) -> None:
    upstream.submitted("h-video")
    upstream.record("h-video", 20)
    form = {"prompt": "once", "seconds": "4"}
    headers = {"Idempotency-Key": "video-once"}
    first, again = (
        client.post("/v1/videos", data=dict(form), headers=headers,
                    content_type="multipart/form-data")
        for _ in range(2)
    )  # fmt: skip
    assert first.status_code == again.status_code == 200, first.json
    assert first.json["id"] == again.json["id"]
    assert len(upstream.calls(upstream.GENERATE)) == 1
    other = client.post(
        "/v1/videos",
        data={**form, "seconds": "5"},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert other.status_code == 422  # the key named another request


def test_models_lists_the_video_models_with_what_they_make(client) -> None:
    data = client.get("/v1/models").json["data"]
    videos = {m["id"]: m for m in data if m.get("kind") == "video"}
    assert set(videos) == {m.id for m in VIDEO_MODELS}
    s25 = videos["jimeng-video-seedance-2.5"]
    assert s25["seconds"] == list(range(4, 16)) and "1080p" in s25["resolutions"]
    assert videos["jimeng-video-seedance-2.0"]["needs_browser_tokens"] is True
    one = client.get("/v1/models/seedance-1.0-pro").json
    assert (one["id"], one["seconds"]) == ("jimeng-video-seedance-1.0-pro", [5, 10])
    assert client.get("/v1/models/jimeng-video-3.0").status_code == 404
