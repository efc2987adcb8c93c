"""Small builders shared by the tests."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import replace

import responses

from jimeng_api.upstream import Draft

DRAFT = Draft(
    model_key="high_aes_general_v30l:general_v3.0_18b",
    prompt="a cat",
    negative_prompt="",
    width=1024,
    height=1024,
    image_ratio=1,
    resolution_type="1k",
    sample_strength=0.5,
    seed=42,
    n=None,
    draft_version="3.0.2",
    min_version="3.0.2",
)

#: pooled mode: an API key and three pooled sessions
KEY = "sk-team-key-0123456789"
S1, S2, S3 = "poolsessionAAAA1111", "poolsessionBBBB2222", "poolsessionCCCC3333"
URLS = [f"https://p9-dreamina-sign.byteimg.com/img/{i}.jpeg" for i in range(4)]


def draft(**changes) -> Draft:
    """Return the standard test draft with *changes* applied."""
    return replace(DRAFT, **changes)


def pooled_app(make_app, sessions=(S1, S2), **overrides):
    """A pooled app (``JIMENG_SESSION_IDS`` + ``API_KEYS=(KEY,)``)."""
    settings = {"JIMENG_SESSION_IDS": tuple(sessions), "API_KEYS": (KEY,)}
    return make_app(**{**settings, **overrides})


def bearer(*tokens) -> dict[str, str]:
    return {"Authorization": "Bearer " + ",".join(tokens)}


def session_of(request) -> str:
    """Return the session id a request to Jimeng was sent with."""
    return re.search(r"(?:^|; )sessionid=([^;]+)", request.headers["Cookie"]).group(1)


def envelope(data=None, ret="0", errmsg="success") -> dict:
    return {"ret": ret, "errmsg": errmsg, "data": data}


def accepted(history_id: str) -> dict:
    """A generate reply that accepted the task as *history_id*."""
    return envelope({"aigc_data": {"history_record_id": history_id}})


def credit(gift=0, purchase=0, vip=0) -> dict:
    """A ``user_credit`` reply with this balance."""
    return envelope(
        {
            "credit": {
                "gift_credit": gift,
                "purchase_credit": purchase,
                "vip_credit": vip,
            }
        }
    )


def _answer(body):
    if isinstance(body, BaseException):
        raise body
    if callable(body):
        return body()
    if isinstance(body, tuple):  # (status, text)
        return body[0], {}, body[1]
    return 200, {}, json.dumps(body)


def by_session(upstream, path, replies) -> None:
    """Answer *path* according to the calling session (a list is used in turn,
    its last entry repeating)."""
    queues = {t: list(r) if isinstance(r, list) else [r] for t, r in replies.items()}
    lock = threading.Lock()

    def answer(request):
        with lock:
            queue = queues[session_of(request)]
            body = queue.pop(0) if len(queue) > 1 else queue[0]
        return _answer(body)

    upstream.mock.add_callback(responses.POST, upstream.url(path), callback=answer)


def in_turn(upstream, path, *replies) -> list[dict]:
    """Answer *path* with *replies* in turn, whoever calls (the last repeats);
    an exception is raised, a ``(status, text)`` pair sent raw. Returns the
    list the request bodies are appended to (with the calling session)."""
    queue = list(replies)
    sent: list[dict] = []
    lock = threading.Lock()

    def answer(request):
        with lock:
            body = queue.pop(0) if len(queue) > 1 else queue[0]
            sent.append({**json.loads(request.body), "session": session_of(request)})
        return _answer(body)

    upstream.mock.add_callback(responses.POST, upstream.url(path), callback=answer)
    return sent
