"""Memory stays bounded whatever the callers send; secrets never leak."""

from __future__ import annotations

import json
import logging
import tracemalloc

import pytest

from config import TestingConfig
from jimeng_api import create_app
from jimeng_api.extensions import get_generator
from jimeng_api.tokens import BoundedMap, Cooldowns, SessionPool

URLS = ["https://p9-dreamina-sign.byteimg.com/img/0.jpeg"]


def test_session_pool_is_bounded_and_keeps_recent_sessions():
    pool = SessionPool(100, 4, lambda session, token: None)
    for i in range(10_000):
        pool.get(f"token-{i}")
    assert len(pool) == 100
    recent = pool.get("token-9999")
    assert pool.get("token-9999") is recent


def test_memory_does_not_grow_with_distinct_session_ids():
    app = create_app(TestingConfig, overrides={"UPSTREAM_MAX_SESSIONS": 64})
    with app.app_context():
        generator = get_generator()
    tracemalloc.start()
    for i in range(2_000):
        generator.client.sessions.get(f"warm-{i}")
        generator.cooldowns.mark(f"warm-{i}")
    warm, _ = tracemalloc.get_traced_memory()
    for i in range(10_000):
        generator.client.sessions.get(f"more-{i}")
        generator.cooldowns.mark(f"more-{i}")
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(generator.client.sessions) == 64
    assert after - warm < 2 * 1024 * 1024  # 10 000 more ids: no real growth


def test_cooldowns_and_maps_are_bounded():
    cooldowns = Cooldowns(60, maxsize=50)
    for i in range(1_000):
        cooldowns.mark(f"t{i}")
    assert len(cooldowns) == 50
    assert cooldowns.cooling("t999") and not cooldowns.cooling("t0")
    bounded = BoundedMap(3)
    for i in range(10):
        bounded.set(i, i)
    assert len(bounded) == 3 and bounded.get(9) == 9 and bounded.get(0) is None


SECRET_A = "secretsessionAAAA1111"
SECRET_B = "secretsessionBBBB2222"


@pytest.fixture
def leaky_upstream(app, upstream):
    """An upstream that echoes the caller's cookie in its error messages."""

    def echo(ret):
        def callback(request):
            cookie = request.headers["Cookie"]
            body = {"ret": ret, "errmsg": f"bad request, cookie: {cookie}"}
            return 200, {}, json.dumps(body)

        return callback

    for path, ret in [(upstream.GENERATE, "1015"), (upstream.GENERATE, "1234")]:
        upstream.mock.add_callback("POST", upstream.url(path), callback=echo(ret))
    upstream.mock.add_callback("POST", upstream.url(upstream.CREDIT), echo("1015"))
    return upstream


def test_session_ids_never_reach_logs_or_responses(app, leaky_upstream, caplog):
    client = app.test_client()
    auth = {"Authorization": f"Bearer {SECRET_A},{SECRET_B}"}
    with caplog.at_level(logging.DEBUG):
        bodies = [
            client.post("/v1/images/generations", json={"prompt": "x"}, headers=auth),
            client.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "x"}]},
                headers=auth,
            ),
            client.post(
                "/v1/images/generations",
                json={"prompt": "x"},
                headers={"Authorization": f"Bearer {SECRET_A};x"},
            ),
        ]
    text = caplog.text + "".join(
        r.get_data(as_text=True) + str(r.headers) for r in bodies
    )
    assert all(r.status_code >= 400 for r in bodies)
    assert SECRET_A not in text and SECRET_B not in text
