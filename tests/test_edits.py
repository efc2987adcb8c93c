"""Image to image through the real server (gunicorn + gevent) on the strict
simulator, driven by the official openai SDK: ``images.edit`` with one file and
with several (``image[]``), JSON references on ``images.generate``, the
``/v1/images/compositions`` alias, and bad input refused before anything is paid."""

from __future__ import annotations

import base64
import io

import openai
import pytest
import requests
from PIL import Image

from tests.servers import api_env, gunicorn_server

pytestmark = pytest.mark.server

TOKEN = "edits-session-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def png(width=64, height=48, color=(30, 160, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def server(sim, tmp_path_factory):
    env = api_env(
        sim,
        DATA_DIR=str(tmp_path_factory.mktemp("edits-data")),
        JIMENG_IMAGEX_URL=sim.base_url,
        MAX_CONTENT_LENGTH=str(16 * 1024 * 1024),
        POLL_EXPECTED_SECONDS="1",
        POLL_FINISHING_INTERVAL="0.2",
        POLL_MIN_INTERVAL="0.1",
    )
    with gunicorn_server(env) as running:
        yield running


@pytest.fixture
def sdk(server, fresh_sim):
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=TOKEN, timeout=60)
    yield client
    client.close()  # no idle keep-alive connection holds up the server's shutdown


def tasks(sim) -> list[dict]:
    stats = requests.get(sim.base_url + "/__sim/stats", timeout=10).json()
    return list(stats["tasks"].values())


def test_sdk_edit_with_one_file(sdk, fresh_sim):
    result = sdk.images.edit(
        model="jimeng-4.0",
        image=("cat.png", png(), "image/png"),
        prompt="the same cat as a watercolor",
        n=1,
    )
    assert len(result.data) == 1 and result.data[0].url.startswith(fresh_sim.base_url)
    assert result.size == "2304x1728"  # 4:3 like the reference, at 2k
    (task,) = tasks(fresh_sim)
    assert task["prompt"] == "##the same cat as a watercolor"
    assert (task["width"], task["height"], task["gen_count"]) == (2304, 1728, 1)
    stats = fresh_sim.stats()
    assert stats["calls"]["imagex_commit"] == 1 and stats["violations"] == []
    assert stats["submissions"] == 1


def test_sdk_edit_with_several_files_keeps_their_order(sdk, fresh_sim):
    files = [
        ("a.png", png(color=(255, 0, 0)), "image/png"),
        ("b.png", png(40, 40, (0, 255, 0)), "image/png"),
        ("c.png", png(30, 60, (0, 0, 255)), "image/png"),
    ]
    result = sdk.images.edit(
        model="jimeng-5.0",
        image=files,
        prompt="combine them",
        n=2,
        quality="low",
        response_format="b64_json",
        output_format="jpeg",
    )
    assert len(result.data) == 2
    assert result.output_format == "jpeg" and result.quality == "low"
    decoded = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert decoded.format == "JPEG"
    (task,) = tasks(fresh_sim)
    assert task["prompt"] == "######combine them"
    assert (task["width"], task["height"]) == (1024, 768)  # low: 1k; 4:3 from a.png
    assert fresh_sim.stats()["calls"]["imagex_upload"] == 3


def test_json_references_on_generate_and_the_compositions_alias(sdk, server, fresh_sim):
    result = sdk.images.generate(
        model="jimeng-4.5",
        prompt="a fox in this style",
        n=1,
        extra_body={"image": [data_uri(png())]},
    )
    assert len(result.data) == 1
    response = requests.post(
        server.base_url + "/v1/images/compositions",
        json={
            "model": "jimeng-4.0",
            "prompt": "put them together",
            "n": 1,
            "images": [{"url": data_uri(png())}, {"url": data_uri(png(20, 20))}],
        },
        headers=AUTH,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["input_images"] == 2
    assert body["composition_type"] == "multi_image_synthesis"
    prompts = {t["prompt"] for t in tasks(fresh_sim)}
    assert prompts == {"##a fox in this style", "####put them together"}


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"extra_body": {"image": [data_uri(png())] * 11}}, "image", "too_many_images"),
        (
            {"extra_body": {"image": "http://10.0.0.1/x.png"}},
            "image",
            "url_not_allowed",
        ),
        ({"extra_body": {"image": data_uri(b"GIF89a..")}}, "image", "not_an_image"),
        (
            {"model": "jimeng-2.0", "extra_body": {"image": data_uri(png())}},
            "model",
            "model_not_supported",
        ),
    ],
)
def test_bad_references_are_bad_requests_and_cost_nothing(
    sdk, fresh_sim, kwargs, param, code
):
    kwargs = {"model": "jimeng-4.0", **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(prompt="x", n=1, **kwargs)
    error = caught.value.body
    assert (error["param"], error["code"]) == (param, code)
    stats = fresh_sim.stats()
    assert stats["submissions"] == 0 and stats["calls"].get("upload_token", 0) == 0


def test_a_mask_is_refused_through_the_sdk(sdk, fresh_sim):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.edit(
            model="jimeng-4.0",
            image=("a.png", png(), "image/png"),
            mask=("m.png", png(), "image/png"),
            prompt="inpaint",
        )
    assert caught.value.body["param"] == "mask"
    assert fresh_sim.stats()["submissions"] == 0
