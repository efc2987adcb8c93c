"""Memory stays bounded whatever the callers send; secrets never leak."""

from __future__ import annotations

import json
import logging
import time
import tracemalloc

import pytest

from tests.conftest import services

URLS = ["https://p9-dreamina-sign.byteimg.com/img/0.jpeg"]


def test_memory_does_not_grow_with_distinct_session_ids(make_app):
    client = services(make_app(UPSTREAM_MAX_SESSIONS=64))["client"]
    tracemalloc.start()
    for i in range(300):
        client.sessions.get(f"warm-{i}")
    warm, _ = tracemalloc.get_traced_memory()
    for i in range(1_500):
        client.sessions.get(f"more-{i}")
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(client.sessions) == 64
    assert after - warm < 1024 * 1024  # 1 500 more ids: no real growth


def test_per_account_state_expires_from_the_store(make_app):
    """Cooldowns and balances live on the store with TTLs, not in a map of
    every session ever seen."""
    app = make_app(TOKEN_COOLDOWN=0.3, CREDIT_CACHE_TTL=0.3)
    accounts, store = services(app)["accounts"], services(app)["store"]
    for i in range(200):
        accounts.cool_down(f"cold-{i}")
        accounts.remember(f"cold-{i}", {"totalCredit": 0})
    assert accounts.cooling("cold-7") and accounts.balance("cold-7") == 0
    time.sleep(0.4)
    assert not accounts.cooling("cold-7") and accounts.balance("cold-7") is None
    assert store.purge() >= 400


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
