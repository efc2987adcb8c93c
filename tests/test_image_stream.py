"""Image streaming: ``images.generate(stream=True)`` and ``images.edit(stream=True)``
through the official openai SDK over gunicorn + gevent on the simulator (each
image an event as soon as it exists), and the event generator's edge cases."""

from __future__ import annotations

import base64
import io
import json
import time

import openai
import pytest
from PIL import Image

from jimeng_api.errors import GenerationFailedError
from jimeng_api.image_stream import image_events
from tests.servers import api_env, gunicorn_server

TOKEN = "stream-session-0001"


def png(width=48, height=48, color=(120, 40, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


# --- through the SDK ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server(sim, tmp_path_factory):
    env = api_env(
        sim,
        DATA_DIR=str(tmp_path_factory.mktemp("stream-data")),
        JIMENG_IMAGEX_URL=sim.base_url,
        POLL_EXPECTED_SECONDS="1",
        POLL_FINISHING_INTERVAL="0.1",
        POLL_MIN_INTERVAL="0.1",
        POLL_DENSE_WINDOW="30",
    )
    with gunicorn_server(env) as running:
        yield running


@pytest.fixture
def sdk(server, fresh_sim):
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=TOKEN, timeout=60)
    yield client
    client.close()


@pytest.mark.server
def test_generate_stream_yields_each_image_as_it_comes(sdk, fresh_sim):
    fresh_sim.configure(task_seconds=3.0, task_jitter=0.0)
    stream = sdk.images.generate(
        model="jimeng-4.0",
        prompt="two lighthouses",
        n=2,
        stream=True,
        partial_images=1,
        output_format="jpeg",
    )
    events, arrived = [], []
    for event in stream:
        events.append(event)
        arrived.append(time.monotonic())
    types = [e.type for e in events]
    assert types == [
        "image_generation.partial_image",
        "image_generation.completed",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    partial, first, _, second = events
    assert partial.partial_image_index == 0 and events[2].partial_image_index == 1
    assert decode(partial.b64_json).size[0] <= 256
    for completed in (first, second):
        assert decode(completed.b64_json).format == "JPEG"
        assert completed.output_format == "jpeg" and completed.size == "2048x2048"
        assert completed.background == "opaque" and completed.quality == "medium"
    assert first.usage.input_tokens > 0 and second.usage.input_tokens == 0
    # the simulator shows image 2 of 2 0.9 s after image 1: it was not held back
    assert arrived[3] - arrived[1] > 0.4
    assert fresh_sim.stats()["submissions"] == 1


@pytest.mark.server
def test_edit_stream_yields_image_edit_events(sdk, fresh_sim):
    stream = sdk.images.edit(
        model="jimeng-4.0",
        image=[
            ("a.png", png(), "image/png"),
            ("b.png", png(color=(1, 2, 3)), "image/png"),
        ],
        prompt="merge",
        n=1,
        stream=True,
    )
    events = list(stream)
    assert [e.type for e in events] == ["image_edit.completed"]  # partial_images 0
    assert decode(events[0].b64_json).format == "PNG"  # the simulator's own format
    assert fresh_sim.stats()["calls"]["imagex_commit"] == 2


@pytest.mark.server
def test_a_refused_stream_is_an_ordinary_error(sdk, fresh_sim):
    with pytest.raises(openai.BadRequestError):
        sdk.images.generate(
            prompt="x", model="jimeng-4.0", stream=True, extra_body={"image": "nope!"}
        )


# --- the generator -------------------------------------------------------------------


def job(status="in_progress", urls=(), **fields):
    spec = {"draft": {"prompt": "a cat"}, "size": "1024x1024", "quality": "low"}
    return {
        "id": "task_x",
        "status": status,
        "urls": list(urls),
        "spec": spec,
        **fields,
    }


class Updates:
    """A ``Jobs.wait``-like iterator that records whether it was closed."""

    def __init__(self, items):
        self.items = iter(items)
        self.closed = False

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.items)

    def close(self):
        self.closed = True


def run(updates, **kwargs):
    options = {
        "fetch": lambda url: png(),
        "error_of": lambda j: GenerationFailedError("it failed"),
        "prefix": "image_generation",
        "partial_images": 0,
        "keepalive": 0.0,
        **kwargs,
    }
    return list(image_events(job(), updates, **options))


def payloads(chunks):
    return [json.loads(c[6:]) for c in chunks if c.startswith("data: {")]


def test_keepalives_while_waiting_and_done_at_the_end():
    updates = Updates([job(), None, job(urls=["u0"]), job("completed", ["u0"])])
    chunks = run(updates)
    assert chunks[0] == ": keep-alive\n\n" and chunks[-1] == "data: [DONE]\n\n"
    (event,) = payloads(chunks)
    assert event["type"] == "image_generation.completed" and event["image_index"] == 0
    assert updates.closed


def test_a_failure_after_the_first_image_is_an_error_event():
    updates = Updates([job(urls=["u0"]), job("failed", ["u0"])])
    events = payloads(run(updates))
    assert events[0]["type"] == "image_generation.completed"
    assert events[1]["error"]["code"] == "generation_failed"


def test_a_partial_result_says_so():
    chunks = run(Updates([job("completed", ["u0"], partial="1/2")]))
    assert ": partial 1/2\n\n" in chunks


def test_an_image_that_cannot_be_fetched_ends_the_stream_with_an_error():
    def fetch(url):
        raise GenerationFailedError("gone")

    events = payloads(run(Updates([job("completed", ["u0"])]), fetch=fetch))
    assert events == [{"error": GenerationFailedError("gone").to_dict()["error"]}]
