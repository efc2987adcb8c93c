"""POST /v1/chat/completions: the non-stream shape and the SSE stream."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import raw_record, services, wait_for

URLS = [f"https://p9-dreamina-sign.byteimg.com/img/{i}.jpeg" for i in range(4)]
CAT = {"messages": [{"role": "user", "content": "a cat"}]}


def read_events(response) -> list:
    """Parse an SSE body into JSON payloads; ``[DONE]`` stays a string."""
    blocks = response.get_data(as_text=True).split("\n\n")
    data = [b.removeprefix("data: ") for b in blocks if b.startswith("data: ")]
    return [d if d == "[DONE]" else json.loads(d) for d in data]


def incremental(upstream, history_id="h1"):
    upstream.submitted(history_id)
    upstream.record(history_id, 20)
    upstream.record(history_id, 45, URLS[:1])
    upstream.record(history_id, 45, URLS[:3])
    upstream.record(history_id, 50, URLS)


def test_non_stream_completion_shape(client, upstream):
    upstream.generation("h1", URLS[:2])
    response = client.post("/v1/chat/completions", json=CAT)
    body = response.json
    assert response.status_code == 200
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int) and body["model"] == "jimeng-3.0"
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {
        "role": "assistant",
        "content": f"![image_0]({URLS[0]})\n![image_1]({URLS[1]})\n",
    }
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_headers(client, upstream):
    upstream.generation("h1", URLS)
    response = client.post("/v1/chat/completions", json={**CAT, "stream": True})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.headers["X-Task-Id"].startswith("task_")


def test_stream_chunks_follow_the_openai_format(client, upstream):
    incremental(upstream)
    response = client.post("/v1/chat/completions", json={**CAT, "stream": True})
    events = read_events(response)

    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["choices"][0]["index"] == 0 for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes.count("stop") == 1 and finishes[-1] == "stop"
    images = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert images == [f"![image_{i}]({u})\n" for i, u in enumerate(URLS)]


def streamed_text(events) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"]
    )


@pytest.mark.parametrize(
    "partial",
    [
        False,
        pytest.param(
            True,
        ),
    ],
)
def test_streamed_and_plain_content_are_the_same(client, upstream, partial):
    body = CAT if partial else {**CAT, "n": 2}  # 2 of 4 images, or 2 of 2
    upstream.generation("h1", URLS[:2])
    upstream.generation("h2", URLS[:2])
    plain = client.post("/v1/chat/completions", json=body).json
    streamed = read_events(
        client.post("/v1/chat/completions", json={**body, "stream": True})
    )
    assert streamed_text(streamed) == plain["choices"][0]["message"]["content"]


def test_the_progress_line_is_a_setting(make_app, upstream):
    app = make_app(CHAT_PROGRESS_TEXT=True)
    upstream.generation("h1", URLS[:1])
    body = {**CAT, "n": 1, "stream": True, "stream_options": {"include_usage": True}}
    response = app.test_client().post(
        "/v1/chat/completions", json=body, headers={"Authorization": "Bearer s"}
    )
    events = read_events(response)
    assert "图像生成中" in events[0]["choices"][0]["delta"]["content"]
    usage = events[-2]["usage"]
    # the progress line is not the model's output: it is not counted
    image_line = f"![image_0]({URLS[0]})\n"
    assert usage["completion_tokens"] == math.ceil(len(image_line) / 4)


def test_a_request_may_ask_for_the_progress_line(client, upstream):
    upstream.generation("h1", URLS[:1])
    body = {**CAT, "stream": True, "progress": True}
    events = read_events(client.post("/v1/chat/completions", json=body))
    assert "图像生成中" in events[0]["choices"][0]["delta"]["content"]


def test_images_are_streamed_as_they_appear(make_app, upstream):
    # polls 0.15 s apart: each image goes out well before the next poll
    app = make_app(POLL_FINISHING_INTERVAL=0.15, POLL_EXPECTED_SECONDS=0.1)
    incremental(upstream)
    response = app.test_client().post(
        "/v1/chat/completions",
        json={**CAT, "stream": True},
        headers={"Authorization": "Bearer s"},
        buffered=False,
    )
    seen = []
    for piece in response.response:
        text = piece.decode() if isinstance(piece, bytes) else piece
        if "image_" in text:
            seen.append(len(upstream.calls(upstream.HISTORY)))
    response.close()
    # image 0 went out right after poll 2, images 1-2 after poll 3, image 3 after 4
    assert seen == [2, 3, 3, 4]


def test_usage_chunk_when_asked(client, upstream):
    upstream.generation("h1", URLS[:1])
    body = {**CAT, "stream": True, "stream_options": {"include_usage": True}}
    events = read_events(client.post("/v1/chat/completions", json=body))
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] > 0
    assert events[-3]["choices"][0]["finish_reason"] == "stop"


def test_keepalive_comments_while_waiting(make_app, upstream):
    app = make_app(SSE_KEEPALIVE_INTERVAL=0.01, POLL_FINISHING_INTERVAL=0.03)
    upstream.submitted("h1")
    for _ in range(5):
        upstream.record("h1", 20)
    upstream.record("h1", 50, URLS)
    response = app.test_client().post(
        "/v1/chat/completions",
        json={**CAT, "stream": True},
        headers={"Authorization": "Bearer s"},
    )
    text = response.get_data(as_text=True)
    assert text.count(": keep-alive\n\n") >= 3
    assert text.endswith("data: [DONE]\n\n")


def test_keepalives_keep_their_cadence_while_the_job_keeps_changing(make_app, upstream):
    app = make_app(SSE_KEEPALIVE_INTERVAL=0.1, POLL_FINISHING_INTERVAL=0.04)
    upstream.submitted("h1")
    # the queue position comes and goes: the stage changes at every poll
    # (about every 40 ms, faster than the keep-alive interval) for about 0.7 s,
    # without any image
    flapping = [
        raw_record(20, queue_info={"queue_idx": i % 2, "queue_length": 5})
        for i in range(16)
    ]
    upstream.history().add("h1", *flapping, raw_record(50, URLS))
    response = app.test_client().post(
        "/v1/chat/completions",
        json={**CAT, "stream": True},
        headers={"Authorization": "Bearer s"},
    )
    text = response.get_data(as_text=True)
    assert text.count("![image_") == 4
    assert text.count(": keep-alive\n\n") >= 4  # about 0.7 s at 0.1 s


def test_failure_mid_stream_is_an_error_event_then_done(client, upstream):
    upstream.submitted("h1")
    upstream.record("h1", 30, fail_code="2038")
    events = read_events(
        client.post("/v1/chat/completions", json={**CAT, "stream": True})
    )
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "content_policy_violation"
    assert all(
        c.get("choices", [{}])[0].get("finish_reason") is None for c in events[:-2]
    )
    assert len(upstream.calls(upstream.GENERATE)) == 1


def test_submit_failure_before_streaming_is_a_json_error(client, upstream):
    upstream.reply(upstream.GENERATE, None, ret="1006", errmsg="积分不足")
    upstream.reply(upstream.RECEIVE, None, ret="1014", errmsg="system busy")
    response = client.post("/v1/chat/completions", json={**CAT, "stream": True})
    assert response.status_code == 429
    assert response.mimetype == "application/json"
    assert response.headers["x-should-retry"] == "false"
    assert response.json["error"]["type"] == "insufficient_quota"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": "  "}]}, "messages"),
        ({"messages": [{"role": "system", "content": "be nice"}]}, "messages"),
        ({**CAT, "model": "gpt-4"}, "model"),
        ({**CAT, "model": "jimeng-3.0:bogus"}, "model"),
        ({**CAT, "n": 0}, "n"),
        ({**CAT, "stream_options": {"include_usage": "yes"}},
         "stream_options.include_usage"),
    ],
)  # fmt: skip
def test_invalid_bodies_are_400_in_both_modes(client, upstream, body, param, stream):
    if "stream" not in body:
        body = {**body, "stream": stream}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code in (400, 404), response.json
    assert response.mimetype == "application/json"
    assert response.json["error"]["param"] == param
    assert upstream.calls(upstream.GENERATE) == []


def test_stream_must_be_a_boolean(client, upstream):
    response = client.post("/v1/chat/completions", json={**CAT, "stream": "false"})
    assert response.status_code == 400
    assert response.json["error"]["param"] == "stream"


def test_prompt_is_the_last_user_message_with_text_parts_joined(client, upstream):
    upstream.generation("h1", URLS[:1])
    messages = [
        {"role": "system", "content": "You draw."},
        {"role": "user", "content": "old prompt"},
        {"role": "assistant", "content": "![image_0](x)"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "a red"},
                {"type": "text", "text": "fox"},
            ],
        },
    ]
    response = client.post("/v1/chat/completions", json={"messages": messages})
    assert response.status_code == 200
    draft = json.loads(
        json.loads(upstream.calls(upstream.GENERATE)[0].request.body)["draft_content"]
    )
    core = draft["component_list"][0]["abilities"]["generate"]["core_param"]
    assert core["prompt"] == "a red\nfox"


def test_an_image_part_is_never_silently_dropped(client, upstream):
    """An image in the last user message makes it image to image: one that
    cannot be used is a 400 naming the part, before anything is submitted."""
    content = [
        {"type": "text", "text": "like this"},
        {"type": "image_url", "image_url": {"url": "http://127.0.0.1/y.png"}},
    ]
    response = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": content}]},
    )
    assert response.status_code == 400
    assert response.json["error"]["param"] == "messages[0].content[1]"
    assert upstream.calls(upstream.GENERATE) == []


@pytest.mark.parametrize(
    ("model", "width", "height", "ratio"),
    [
        ("jimeng-3.0:1280x720", 1280, 720, 3),
        ("jimeng-3.0:1023x767", 1024, 768, 4),
        ("jimeng-4.0:16:9", 2560, 1440, 3),
    ],
)
def test_model_size_suffix(client, upstream, model, width, height, ratio):
    upstream.generation("h1", URLS[:1])
    response = client.post("/v1/chat/completions", json={**CAT, "model": model})
    assert response.json["model"] == model
    draft = json.loads(
        json.loads(upstream.calls(upstream.GENERATE)[0].request.body)["draft_content"]
    )
    core = draft["component_list"][0]["abilities"]["generate"]["core_param"]
    info = core["large_image_info"]
    assert (info["width"], info["height"], core["image_ratio"]) == (
        width,
        height,
        ratio,
    )


def test_a_client_that_leaves_does_not_stop_its_task(app, upstream):
    """Jobs are durable: the images are paid for, so a closed stream leaves the
    task running; it is collected by the id in X-Task-Id."""
    upstream.submitted("h1")
    history = upstream.history()
    history.add("h1", raw_record(20))
    response = app.test_client().post(
        "/v1/chat/completions",
        json={**CAT, "stream": True},
        headers={"Authorization": "Bearer s"},
        buffered=False,
    )
    task_id = response.headers["X-Task-Id"]
    iterator = iter(response.response)
    next(iterator)  # the first chunk
    response.close()
    polls = len(history.polls)
    wait_for(lambda: len(history.polls) > polls)  # still polled
    history.add("h1", raw_record(50, URLS[:1]))
    jobs = services(app)["jobs"]
    done = wait_for(lambda: (j := jobs.get(task_id))["status"] == "completed" and j)
    assert done["result"]["choices"][0]["message"]["content"] == (
        f"![image_0]({URLS[0]})\n"
    )
    task = app.test_client().get(
        f"/v1/tasks/{task_id}", headers={"Authorization": "Bearer s"}
    )
    assert task.json["status"] == "completed"


def test_a_partial_result_ends_with_a_note(make_app, upstream):
    app = make_app(STALL_SECONDS=0.2)
    upstream.submitted("h1")
    upstream.record("h1", 45, URLS[:2])
    events = read_events(
        app.test_client().post(
            "/v1/chat/completions",
            json={**CAT, "stream": True},
            headers={"Authorization": "Bearer s"},
        )
    )
    text = streamed_text(events)
    assert text.count("![image_") == 2
    assert "2/4" in text
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


def test_negative_prompt_extension_reaches_the_draft(client, upstream):
    upstream.generation("h1", URLS[:1])
    body = {**CAT, "negative_prompt": "blurry"}
    assert client.post("/v1/chat/completions", json=body).status_code == 200
    draft = json.loads(
        json.loads(upstream.calls(upstream.GENERATE)[0].request.body)["draft_content"]
    )
    core = draft["component_list"][0]["abilities"]["generate"]["core_param"]
    assert core["negative_prompt"] == "blurry"
