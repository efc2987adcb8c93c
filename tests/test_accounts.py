"""accounts.py: per-account state on the store, shared by every worker: the
order of use, cooldowns, the daily claim, slots, the parallel limit, balances."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client import REGISTRY

from tests.conftest import raw_record, services, wait_for
from tests.factories import (
    KEY,
    S1,
    S2,
    S3,
    URLS,
    accepted,
    bearer,
    by_session,
    credit,
    envelope,
    in_turn,
    pooled_app,
    session_of,
)

CAT = {"prompt": "a cat"}
AUTH = bearer(KEY)


def accounts_of(app):
    return services(app)["accounts"]


def generate_sessions(upstream) -> list[str]:
    return [session_of(c.request) for c in upstream.calls(upstream.GENERATE)]


def generate(app, headers=AUTH, body=CAT):
    return app.test_client().post("/v1/images/generations", json=body, headers=headers)


@pytest.fixture
def pooled(make_app):
    return pooled_app(make_app)


# --- order --------------------------------------------------------------------------


def test_round_robin_spreads_generations(pooled, upstream):
    for i in range(4):
        upstream.generation(f"h{i}", URLS)
        assert generate(pooled).status_code == 200
    first, second, third, fourth = generate_sessions(upstream)
    assert {first, second} == {S1, S2}
    assert (third, fourth) == (first, second)


def test_round_robin_over_three_sessions(make_app):
    accounts = accounts_of(pooled_app(make_app, (S1, S2, S3)))
    firsts = [accounts.order([S1, S2, S3])[0] for _ in range(6)]
    assert set(firsts[:3]) == {S1, S2, S3}
    assert firsts[3:] == firsts[:3]
    start = [S1, S2, S3].index(firsts[0])  # then in the configured order
    assert firsts[:3] == [[S1, S2, S3][(start + i) % 3] for i in range(3)]


def test_the_turn_is_shared_by_every_worker_on_one_store(make_app, tmp_path):
    store_url = "sqlite:///" + str(tmp_path / "shared.db")
    one = accounts_of(pooled_app(make_app, (S1, S2), STORE_URL=store_url))
    two = accounts_of(pooled_app(make_app, (S1, S2), STORE_URL=store_url))
    firsts = [a.order([S1, S2])[0] for a in (one, two, one, two)]
    assert firsts[0] != firsts[1] and firsts[:2] == firsts[2:]


def test_cooling_sessions_are_skipped_and_tried_last(make_app):
    accounts = accounts_of(pooled_app(make_app, (S1, S2, S3)))
    accounts.cool_down(S2)
    for _ in range(4):
        order = accounts.order([S1, S2, S3])
        assert order[-1] == S2 and order[0] != S2
    accounts.uncool(S2)
    assert S2 in {accounts.order([S1, S2, S3])[0] for _ in range(3)}


def test_sessions_with_credits_come_before_dry_ones(make_app):
    accounts = accounts_of(pooled_app(make_app, (S1, S2, S3)))
    accounts.remember(S1, {"totalCredit": 0})
    accounts.remember(S2, {"totalCredit": 12})
    accounts.remember(S3, {"totalCredit": 40})
    orders = [accounts.order([S1, S2, S3]) for _ in range(4)]
    assert [o[-1] for o in orders] == [S1] * 4  # dry: last resort
    assert {o[0] for o in orders} == {S2, S3}  # round-robin among the funded
    accounts.cool_down(S2)
    assert accounts.order([S1, S2, S3]) == [S3, S1, S2]  # ready, dry, cooling


def test_an_expired_session_is_cooled_and_skipped(pooled, upstream):
    by_session(
        upstream,
        upstream.GENERATE,
        {S1: envelope(None, "1015", "login error"), S2: accepted("h1")},
    )
    upstream.record("h1", 50, URLS)
    for _ in range(3):
        assert generate(pooled).status_code == 200
    sessions = generate_sessions(upstream)
    assert sessions.count(S1) == 1  # tried once, then cooling: tried last
    assert sessions[-2:] == [S2, S2]
    assert accounts_of(pooled).cooling(S1)


def test_candidates_are_capped_per_request(make_app, upstream):
    sessions = [f"poolsession{i:04d}" for i in range(10)]
    app = pooled_app(make_app, sessions, MAX_TOKENS_PER_REQUEST=3)
    upstream.reply(upstream.GENERATE, None, ret="1015", errmsg="login error")
    assert generate(app).status_code == 401
    assert len(upstream.calls(upstream.GENERATE)) == 3


def test_pool_health_is_published(make_app, upstream):
    app = pooled_app(make_app, (S1, S2, S3))
    accounts_of(app).cool_down(S3)
    upstream.generation("h1", URLS)
    assert generate(app).status_code == 200
    app.test_client().get("/metrics")
    sample = REGISTRY.get_sample_value
    assert sample("jimeng_api_pool_sessions", {"state": "healthy"}) == 2
    assert sample("jimeng_api_pool_sessions", {"state": "cooling"}) == 1


# --- slots ---------------------------------------------------------------------------


def test_the_cap_is_configurable_and_freeing_twice_is_harmless(make_app):
    accounts = accounts_of(pooled_app(make_app, (S1,), POOL_MAX_CONCURRENCY=3))
    assert all(accounts.take_slot(S1, f"job-{i}") for i in range(3))
    assert accounts.take_slot(S1, "job-3") is False
    assert accounts.take_slot(S1, "job-0") is True  # its own slot: renewed
    assert accounts.running(S1) == 3
    for i in range(3):
        accounts.free_slot(S1, f"job-{i}")
        accounts.free_slot(S1, f"job-{i}")
    assert accounts.running(S1) == 0


def test_passthrough_accounts_have_no_cap_of_their_own(app):
    accounts = accounts_of(app)
    assert all(accounts.take_slot("acct-one", f"job-{i}") for i in range(50))


def test_slots_expire_if_nobody_renews_them(make_app):
    accounts = accounts_of(pooled_app(make_app, (S1,), POOL_MAX_CONCURRENCY=1))
    accounts.slot_ttl = 0.05  # SLOT_TTL: a dead worker's slots come back
    assert accounts.take_slot(S1, "job-a")
    assert not accounts.take_slot(S1, "job-b")
    time.sleep(0.1)
    assert accounts.take_slot(S1, "job-b")


def test_a_learned_parallel_limit_lowers_the_cap(make_app):
    accounts = accounts_of(pooled_app(make_app, (S1,), POOL_MAX_CONCURRENCY=5))
    for job in ("a", "b", "c"):
        accounts.take_slot(S1, job)
    accounts.at_parallel_limit(S1)  # "c" was refused with 1310: 2 run at most
    assert accounts.limit(S1) == 2
    accounts.free_slot(S1, "c")
    assert not accounts.take_slot(S1, "d")


def test_the_slot_is_held_until_the_job_ends_even_if_the_client_leaves(
    pooled, upstream
):
    upstream.submitted("h1")
    history = upstream.history()
    history.add("h1", raw_record(45, URLS[:1]))  # one of four images so far
    body = {"messages": [{"role": "user", "content": "a cat"}], "stream": True}
    response = pooled.test_client().post(
        "/v1/chat/completions", json=body, headers=AUTH, buffered=False
    )
    next(iter(response.response))
    response.close()  # the client went away
    accounts = accounts_of(pooled)
    assert accounts.running(S1) + accounts.running(S2) == 1  # still generating
    history.add("h1", raw_record(50, URLS))
    wait_for(lambda: accounts.running(S1) + accounts.running(S2) == 0)


# --- balances and the daily grant -----------------------------------------------------


def test_no_credit_check_on_the_way_to_a_generation(pooled, upstream):
    upstream.generation("h1", URLS)
    assert generate(pooled).status_code == 200
    assert upstream.calls(upstream.CREDIT) == []  # the hot path never waits on it


def test_balances_are_cached_and_dropped_when_credits_are_spent(pooled, upstream):
    accounts = accounts_of(pooled)
    by_session(upstream, upstream.CREDIT, {S1: credit(gift=7), S2: credit(gift=9)})
    assert accounts.points(S1)["totalCredit"] == 7
    assert accounts.balance(S1) == 7 and accounts.balance(S2) is None
    upstream.generation("h1", URLS)
    generate(pooled, bearer(KEY))
    generate(pooled, bearer(KEY))  # one on each account
    wait_for(lambda: accounts.balance(S1) is None)  # spent: the cache is stale


def test_the_cache_lasts_credit_cache_ttl(make_app):
    accounts = accounts_of(pooled_app(make_app, CREDIT_CACHE_TTL=0.05))
    accounts.remember(S1, {"totalCredit": 3})
    assert accounts.balance(S1) == 3
    time.sleep(0.1)
    assert accounts.balance(S1) is None


def test_a_funded_balance_brings_a_cooling_session_back(pooled):
    accounts = accounts_of(pooled)
    accounts.cool_down(S1)
    accounts.remember(S1, {"totalCredit": 0})
    assert accounts.cooling(S1)
    accounts.remember(S1, {"totalCredit": 60})
    assert not accounts.cooling(S1)


def test_a_dry_session_claims_the_daily_grant_and_returns_to_rotation(pooled, upstream):
    accounts = accounts_of(pooled)
    accounts.cool_down(S1)
    upstream.reply(upstream.RECEIVE, {"receive_quota": 60, "cur_total_credits": 60})
    by_session(upstream, upstream.CREDIT, {S1: credit(gift=60)})
    result = accounts.receive(S1)
    assert result["received"] is True and result["receiveQuota"] == 60
    assert accounts.balance(S1) == 60
    assert not accounts.cooling(S1)
    assert len(upstream.calls(upstream.RECEIVE)) == 1


def test_the_daily_grant_is_claimed_once_a_day(pooled, upstream):
    accounts = accounts_of(pooled)
    upstream.reply(upstream.RECEIVE, None, ret="1014", errmsg="system busy")
    assert accounts.claim_daily_grant(S1) is False
    assert accounts.claim_daily_grant(S1) is False
    assert len(upstream.calls(upstream.RECEIVE)) == 1
    assert accounts.claim_daily_grant(S2) is False  # per account
    assert len(upstream.calls(upstream.RECEIVE)) == 2


def test_a_manual_receive_counts_as_today_s_claim(pooled, upstream):
    accounts = accounts_of(pooled)
    upstream.reply(upstream.RECEIVE, {"receive_quota": 60})
    by_session(upstream, upstream.CREDIT, {S1: credit(gift=60)})
    accounts.receive(S1)
    assert accounts.claim_daily_grant(S1) is False  # no second claim today
    assert len(upstream.calls(upstream.RECEIVE)) == 1


def test_running_dry_mid_generation_claims_and_resubmits(pooled, upstream):
    sent = in_turn(
        upstream, upstream.GENERATE, envelope(None, "1006", "积分不足"), accepted("h1")
    )
    upstream.reply(upstream.RECEIVE, {"receive_quota": 60, "cur_total_credits": 60})
    upstream.record("h1", 50, URLS)
    assert generate(pooled).status_code == 200
    assert sent[0]["session"] == sent[1]["session"]
    assert len(upstream.calls(upstream.RECEIVE)) == 1


def test_a_balance_read_that_finds_the_session_expired_cools_it(pooled, upstream):
    upstream.reply(upstream.CREDIT, None, ret="1015", errmsg="login error")
    accounts = accounts_of(pooled)
    with pytest.raises(Exception) as caught:
        accounts.points(S1)
    assert caught.value.code == "session_expired"
    assert accounts.cooling(S1)
    assert accounts.order([S1, S2])[-1] == S1


def test_a_failed_balance_read_keeps_the_last_balance(pooled, upstream):
    accounts = accounts_of(pooled)
    accounts.remember(S1, {"totalCredit": 30})
    upstream.raw(upstream.CREDIT, body=requests.ConnectionError("reset"))
    with pytest.raises(Exception):  # noqa: B017 - any API error
        accounts.points(S1)
    assert accounts.balance(S1) == 30
    assert not accounts.cooling(S1)
