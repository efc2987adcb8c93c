"""Pooled mode: membership (env, file, reload), scheduling, slots and balances."""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import signal
import time
from dataclasses import replace

import pytest
import responses
from prometheus_client import REGISTRY

from config import TestingConfig
from jimeng_api import create_app
from jimeng_api.auth import _is_api_key
from jimeng_api.errors import RateLimitError
from jimeng_api.logs import mask
from jimeng_api.pool import read_session_file
from tests.factories import draft

KEY = "sk-team-key-0123456789"
S1, S2, S3 = "poolsessionAAAA1111", "poolsessionBBBB2222", "poolsessionCCCC3333"
URLS = ["https://p9-dreamina-sign.byteimg.com/img/0.jpeg"]
CAT = {"prompt": "a cat"}
AUTH = {"Authorization": f"Bearer {KEY}"}
DRAFT = draft(seed=None, n=1)


# --- helpers shared with test_token_api.py ---


def make_pooled_app(sessions=(S1, S2), **overrides):
    """A pooled app whose background balance refreshes wait in ``app.spawned``."""
    settings = {"JIMENG_SESSION_IDS": tuple(sessions), "API_KEYS": (KEY,)}
    app = create_app(TestingConfig, overrides={**settings, **overrides})
    app.spawned = []
    if "jimeng_pool" in app.extensions:
        app.extensions["jimeng_pool"].spawn = app.spawned.append
    return app


def run_spawned(app):
    """Run the background work queued so far (and whatever it queues)."""
    while app.spawned:
        app.spawned.pop(0)()


def session_of(request) -> str:
    """Return the session id a request to Jimeng was sent with."""
    return re.search(r"(?:^|; )sessionid=([^;]+)", request.headers["Cookie"]).group(1)


def envelope(data=None, ret="0", errmsg="success"):
    return {"ret": ret, "errmsg": errmsg, "data": data}


def credit(gift=0, purchase=0, vip=0):
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


def by_session(upstream, path, replies):
    """Answer *path* according to the calling session (a list is used in turn)."""
    queues = {t: list(r) if isinstance(r, list) else [r] for t, r in replies.items()}

    def answer(request):
        queue = queues[session_of(request)]
        body = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(body, Exception):
            raise body
        return 200, {}, json.dumps(body)

    upstream.mock.add_callback(responses.POST, upstream.url(path), callback=answer)


def generate_sessions(upstream) -> list[str]:
    return [session_of(c.request) for c in upstream.calls(upstream.GENERATE)]


@pytest.fixture
def pooled():
    return make_pooled_app()


@pytest.fixture
def pool(pooled):
    return pooled.extensions["jimeng_pool"]


def generator_of(app):
    return app.extensions["jimeng"]


# --- membership ---


def test_session_file_skips_comments_blanks_and_junk_without_echoing_it(
    tmp_path, caplog
):
    path = tmp_path / "sessions.txt"
    path.write_text(f"# team accounts\n{S1}\n\n  {S2}  # bob\nnot a;session\n{S1}\n")
    assert read_session_file(str(path)) == [S1, S2, S1]
    assert "line 5 is not a session id" in caplog.text
    assert "not a;session" not in caplog.text


def test_env_and_file_sessions_are_merged_without_duplicates(tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S2}\n{S3}\n")
    app = make_pooled_app((S1, S2), JIMENG_SESSION_FILE=str(path))
    assert app.extensions["jimeng_pool"].sessions() == [S1, S2, S3]


def test_file_changes_are_picked_up_at_most_every_few_seconds(tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    app = make_pooled_app((), JIMENG_SESSION_FILE=str(path))
    pool = app.extensions["jimeng_pool"]
    assert pool.sessions() == [S1]

    path.write_text(f"{S2}\n{S3}\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert pool.sessions() == [S1]  # not stat()ed again yet: cheap on the hot path
    pool.check_interval = 0
    assert pool.sessions() == [S2, S3]


def test_a_changed_file_changes_who_generates(tmp_path, upstream):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    app = make_pooled_app((), JIMENG_SESSION_FILE=str(path))
    app.extensions["jimeng_pool"].check_interval = 0
    client = app.test_client()
    upstream.generation("h1", URLS)
    assert (
        client.post("/v1/images/generations", json=CAT, headers=AUTH).status_code == 200
    )
    path.write_text(f"# S1 removed\n{S2}\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    upstream.generation("h2", URLS)
    assert (
        client.post("/v1/images/generations", json=CAT, headers=AUTH).status_code == 200
    )
    assert generate_sessions(upstream) == [S1, S2]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
def test_sighup_reloads_the_session_file(tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    app = make_pooled_app((), JIMENG_SESSION_FILE=str(path))
    pool = app.extensions["jimeng_pool"]
    path.write_text(f"{S3}\n")  # the mtime may not even change within a tick
    os.kill(os.getpid(), signal.SIGHUP)
    assert pool.sessions() == [S3]


def test_an_unreadable_file_keeps_the_last_sessions(tmp_path, caplog):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    app = make_pooled_app((), JIMENG_SESSION_FILE=str(path))
    pool = app.extensions["jimeng_pool"]
    path.unlink()
    pool.check_interval = 0
    assert pool.sessions() == [S1]
    assert "session file not reloaded" in caplog.text


def test_a_missing_file_stops_the_start_with_a_clear_message(tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="JIMENG_SESSION_FILE=.*nope.txt"):
        make_pooled_app((), JIMENG_SESSION_FILE=missing)


def test_a_session_file_without_api_keys_refuses_to_start(tmp_path):
    path = tmp_path / "sessions.txt"
    path.write_text(f"{S1}\n")
    overrides = {"JIMENG_SESSION_FILE": str(path), "API_KEYS": ()}
    with pytest.raises(ValueError, match="API_KEYS"):
        create_app(TestingConfig, overrides=overrides)


def test_an_empty_pool_answers_503(tmp_path, upstream):
    path = tmp_path / "sessions.txt"
    path.write_text("# nobody yet\n")
    app = make_pooled_app((), JIMENG_SESSION_FILE=str(path))
    response = app.test_client().post("/v1/images/generations", json=CAT, headers=AUTH)
    assert response.status_code == 503
    assert upstream.calls(upstream.GENERATE) == []


def test_passthrough_mode_has_no_pool(app):
    assert "jimeng_pool" not in app.extensions
    assert generator_of(app).scheduler is None


# --- API keys ---


def test_api_keys_are_compared_with_every_key(monkeypatch):
    compared = []

    def compare(a, b):
        compared.append(b)
        return a == b

    monkeypatch.setattr("hmac.compare_digest", compare)
    assert _is_api_key("k1", ("k1", "k2", "k3"))
    assert len(compared) == 3  # no early exit on the first match
    assert not _is_api_key("k4", ("k1", "k2"))
    assert not _is_api_key("ключ", ("k1",))


def test_open_pool_serves_without_a_key(upstream):
    app = make_pooled_app(API_KEYS=(), ALLOW_OPEN_POOL=True)
    upstream.generation("h1", URLS)
    response = app.test_client().post("/v1/images/generations", json=CAT)
    assert response.status_code == 200
    assert generate_sessions(upstream)[0] in (S1, S2)


# --- scheduling ---


def test_round_robin_spreads_generations(pooled, upstream):
    client = pooled.test_client()
    for i in range(4):
        upstream.generation(f"h{i}", URLS)
        assert (
            client.post("/v1/images/generations", json=CAT, headers=AUTH).status_code
            == 200
        )
    assert generate_sessions(upstream) == [S1, S2, S1, S2]


def test_round_robin_over_three_sessions():
    pool = make_pooled_app((S1, S2, S3)).extensions["jimeng_pool"]
    firsts = [pool.candidates()[0] for _ in range(6)]
    assert firsts == [S1, S2, S3, S1, S2, S3]


def test_cooling_sessions_are_skipped_and_tried_last():
    app = make_pooled_app((S1, S2, S3))
    pool = app.extensions["jimeng_pool"]
    generator_of(app).cooldowns.mark(S2)
    for _ in range(4):
        order = pool.candidates()
        assert order[-1] == S2 and order[0] != S2


def test_an_expired_session_is_cooled_and_skipped(pooled, upstream):
    by_session(
        upstream,
        upstream.GENERATE,
        {
            S1: envelope(None, "1015", "login error"),
            S2: envelope({"aigc_data": {"history_record_id": "h1"}}),
        },
    )
    upstream.record("h1", 50, URLS)
    client = pooled.test_client()
    for _ in range(3):
        assert (
            client.post("/v1/images/generations", json=CAT, headers=AUTH).status_code
            == 200
        )
    assert generate_sessions(upstream) == [S1, S2, S2, S2]


def test_sessions_with_credits_come_before_dry_ones():
    app = make_pooled_app((S1, S2, S3))
    pool = app.extensions["jimeng_pool"]
    pool.remember(S1, {"totalCredit": 0})
    pool.remember(S2, {"totalCredit": 12})
    pool.remember(S3, {"totalCredit": 40})
    orders = [pool.candidates() for _ in range(4)]
    assert [o[-1] for o in orders] == [S1] * 4  # dry: last resort
    assert [o[0] for o in orders] == [S2, S3, S2, S3]  # round-robin among funded


def test_pool_health_is_published():
    app = make_pooled_app((S1, S2, S3))
    generator_of(app).cooldowns.mark(S3)
    app.extensions["jimeng_pool"].candidates()
    sample = REGISTRY.get_sample_value
    assert sample("jimeng_api_pool_sessions", {"state": "healthy"}) == 2
    assert sample("jimeng_api_pool_sessions", {"state": "cooling"}) == 1


def test_candidates_are_capped_per_request():
    sessions = [f"poolsession{i:04d}" for i in range(10)]
    pool = make_pooled_app(sessions, MAX_TOKENS_PER_REQUEST=3).extensions["jimeng_pool"]
    assert len(pool.candidates()) == 3


# --- per-session concurrency ---


def test_the_cap_moves_generations_to_other_sessions_then_429(upstream):
    pooled = make_pooled_app(POOL_MAX_CONCURRENCY=1)
    pool = pooled.extensions["jimeng_pool"]
    upstream.submitted("h1")
    upstream.submitted("h2")
    generator = generator_of(pooled)
    first = generator.start(pool.candidates(), DRAFT, "jimeng-3.0")
    second = generator.start(pool.candidates(), DRAFT, "jimeng-3.0")
    assert {first.token, second.token} == {S1, S2}
    with pytest.raises(RateLimitError) as caught:
        generator.start(pool.candidates(), DRAFT, "jimeng-3.0")
    assert caught.value.retryable is True
    assert len(upstream.calls(upstream.GENERATE)) == 2  # nothing else submitted
    first.release()
    assert pool.in_use(first.token) == 0 and pool.in_use(second.token) == 1


def test_all_sessions_busy_is_a_retryable_429_without_submitting(
    pool, pooled, upstream
):
    leases = [pool.hold(s) for s in (S1, S1, S2, S2)]  # POOL_MAX_CONCURRENCY=2
    assert all(leases) and pool.hold(S1) is None and pool.hold(S2) is None
    response = pooled.test_client().post(
        "/v1/images/generations", json=CAT, headers=AUTH
    )
    assert response.status_code == 429
    assert response.json["error"]["code"] == "rate_limit_exceeded"
    assert response.headers["x-should-retry"] == "true"
    assert upstream.calls(upstream.GENERATE) == []


def test_cap_is_configurable(upstream):
    app = make_pooled_app((S1,), POOL_MAX_CONCURRENCY=3)
    pool = app.extensions["jimeng_pool"]
    leases = [pool.hold(S1) for _ in range(3)]
    assert all(leases) and pool.hold(S1) is None and pool.in_use(S1) == 3
    for lease in leases:
        lease()
        lease()  # twice is harmless
    assert pool.in_use(S1) == 0


def test_the_slot_is_held_until_the_last_poll(pooled, pool, upstream):
    upstream.submitted("h1")
    upstream.record("h1", 20)
    upstream.record("h1", 50, URLS)
    job = generator_of(pooled).start([S1], DRAFT, "jimeng-3.0")
    polls = generator_of(pooled).progress(job)
    assert pool.in_use(S1) == 1
    next(polls)  # the first poll: still running
    assert pool.in_use(S1) == 1
    list(polls)
    assert pool.in_use(S1) == 0


def test_the_slot_is_freed_when_the_generation_fails(pooled, pool, upstream):
    upstream.submitted("h1")
    upstream.record("h1", 30, fail_code="2038")
    response = pooled.test_client().post(
        "/v1/images/generations", json=CAT, headers=AUTH
    )
    assert response.status_code == 400
    assert pool.in_use(S1) == pool.in_use(S2) == 0


def test_the_slot_is_freed_when_the_submit_fails(pooled, pool, upstream):
    upstream.reply(upstream.GENERATE, None, ret="1015", errmsg="login error")
    response = pooled.test_client().post(
        "/v1/images/generations", json=CAT, headers=AUTH
    )
    assert response.status_code == 401
    assert pool.in_use(S1) == pool.in_use(S2) == 0


def test_the_slot_is_freed_when_the_client_disconnects_mid_stream(
    pooled, pool, upstream
):
    upstream.submitted("h1")
    upstream.record("h1", 45, URLS)  # one of four images so far
    generator = generator_of(pooled)
    job = generator.start([S1], replace(DRAFT, n=None), "jimeng-3.0")
    polls = generator.progress(job)
    assert next(polls) == URLS
    polls.close()  # what the server does when the client goes away
    assert pool.in_use(S1) == 0


def test_the_slot_is_freed_when_the_stream_never_started(pooled, pool, upstream):
    upstream.submitted("h1")
    body = {"messages": [{"role": "user", "content": "a cat"}], "stream": True}
    client = pooled.test_client()
    response = client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200
    assert pool.in_use(S1) + pool.in_use(S2) == 1
    response.close()  # gone before the first byte: progress() never ran
    del response
    gc.collect()
    assert pool.in_use(S1) + pool.in_use(S2) == 0


# --- balances ---


def test_no_credit_check_before_a_generation_but_a_refresh_after(
    pooled, pool, upstream
):
    upstream.generation("h1", URLS)
    response = pooled.test_client().post(
        "/v1/images/generations", json=CAT, headers=AUTH
    )
    assert response.status_code == 200
    assert upstream.calls(upstream.CREDIT) == []  # the hot path never waits on it
    by_session(upstream, upstream.CREDIT, {S1: credit(gift=7), S2: credit(gift=9)})
    run_spawned(pooled)
    assert pool.balance(S1) == 7 and pool.balance(S2) == 9


def test_balances_are_cached_for_the_ttl(pooled, pool, upstream):
    pool.candidates()
    assert len(pooled.spawned) == 2  # unknown balances: one refresh each
    pool.candidates()
    assert len(pooled.spawned) == 2  # already on their way
    by_session(upstream, upstream.CREDIT, {S1: credit(gift=1), S2: credit(gift=2)})
    run_spawned(pooled)
    pool.candidates()
    assert pooled.spawned == []  # fresh for CREDIT_CACHE_TTL
    pool.ttl = 0
    pool.candidates()
    assert len(pooled.spawned) == 2


def test_background_refresh_runs_off_the_request(upstream):
    app = create_app(
        TestingConfig, overrides={"JIMENG_SESSION_IDS": (S1,), "API_KEYS": (KEY,)}
    )
    pool = app.extensions["jimeng_pool"]
    by_session(upstream, upstream.CREDIT, {S1: credit(gift=5)})
    pool.candidates()
    deadline = time.monotonic() + 5
    while pool.refreshing() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.balance(S1) == 5


def test_a_dry_session_claims_the_daily_grant_and_returns_to_rotation(
    pooled, pool, upstream
):
    generator_of(pooled).cooldowns.mark(S1)
    by_session(upstream, upstream.CREDIT, {S1: [credit(), credit(gift=60)]})
    upstream.reply(upstream.RECEIVE, {"receive_quota": 60, "cur_total_credits": 60})
    pool.refresh(S1)
    assert pool.balance(S1) == 60
    assert not generator_of(pooled).cooldowns.cooling(S1)
    assert len(upstream.calls(upstream.RECEIVE)) == 1


def test_the_daily_grant_is_claimed_once_a_day(pooled, pool, upstream):
    by_session(upstream, upstream.CREDIT, {S1: credit()})
    upstream.reply(upstream.RECEIVE, None, ret="1014", errmsg="system busy")
    pool.refresh(S1)
    pool.refresh(S1)
    assert pool.balance(S1) == 0
    assert len(upstream.calls(upstream.RECEIVE)) == 1


def test_running_dry_mid_generation_claims_and_resubmits(pooled, upstream):
    upstream.reply(upstream.GENERATE, None, ret="1006", errmsg="积分不足")
    upstream.submitted("h1")
    upstream.reply(upstream.RECEIVE, {"receive_quota": 60, "cur_total_credits": 60})
    upstream.record("h1", 50, URLS)
    response = pooled.test_client().post(
        "/v1/images/generations", json=CAT, headers=AUTH
    )
    assert response.status_code == 200
    assert generate_sessions(upstream) == [S1, S1]
    assert len(upstream.calls(upstream.RECEIVE)) == 1


def test_a_refresh_that_finds_the_session_expired_cools_it(pooled, pool, upstream):
    upstream.reply(upstream.CREDIT, None, ret="1015", errmsg="login error")
    pool.refresh(S1)
    assert generator_of(pooled).cooldowns.cooling(S1)
    assert pool.candidates()[-1] == S1


def test_a_failed_refresh_keeps_the_last_balance(pooled, pool, upstream):
    pool.remember(S1, {"totalCredit": 30})
    upstream.raw(upstream.CREDIT, status=503, body="busy")
    pool.refresh(S1)
    assert pool.balance(S1) == 30
    assert not pool.refreshing()


# --- the real thing: gunicorn + gevent against the simulator ---


@pytest.mark.server
@pytest.mark.skipif(
    not hasattr(signal, "SIGHUP") or not shutil.which("pgrep"), reason="no SIGHUP"
)
def test_pooled_server_end_to_end(sim, tmp_path):
    import subprocess

    import requests

    from tests.servers import api_env, gunicorn_server

    a, b, c = "e2e-pool-aaaaaaaaaaaa", "e2e-pool-bbbbbbbbbbbb", "e2e-pool-cccccccccccc"
    path = tmp_path / "sessions.txt"
    path.write_text(f"# team\n{a}\n{b}\n")
    env = api_env(sim, JIMENG_SESSION_FILE=str(path), API_KEYS=KEY, LOG_LEVEL="DEBUG")
    with gunicorn_server(env) as server:
        url, headers = server.base_url, {"Authorization": f"Bearer {KEY}"}
        generated = requests.post(
            url + "/v1/images/generations", json=CAT, headers=headers, timeout=60
        )
        assert generated.status_code == 200
        raw = {"Authorization": f"Bearer {a}"}
        assert requests.post(url + "/token/points", headers=raw).status_code == 401
        points = requests.post(url + "/token/points", headers=headers).json()
        assert [p["points"]["totalCredit"] > 0 for p in points] == [True, True]

        path.write_text(f"{c}\n")
        workers = subprocess.run(
            ["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        for worker in workers:
            os.kill(int(worker), signal.SIGHUP)
        time.sleep(0.3)
        points = requests.post(url + "/token/points", headers=headers).json()
        assert [p["token"] for p in points] == [mask(c)]
        output = server.output()
    assert "session pool: 1 sessions" in output
    for secret in (a, b, c, KEY):
        assert secret not in output


def test_malformed_ids_are_never_used_nor_shown(tmp_path, caplog):
    path = tmp_path / "sessions.txt"
    path.write_bytes(b"\xff\xfe not utf-8 secret\n")
    with pytest.raises(ValueError, match="UnicodeDecodeError") as caught:
        make_pooled_app((), JIMENG_SESSION_FILE=str(path))
    assert "secret" not in str(caught.value)
    pool = make_pooled_app((S1, "bad;cookie=1")).extensions["jimeng_pool"]
    assert pool.sessions() == [S1]
    assert "bad;cookie" not in caplog.text
