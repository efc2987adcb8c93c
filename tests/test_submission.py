"""submission.py: a job is submitted once. The submit_id is recorded first; an
unclear answer is reconciled by looking the submit_id up; account-level
refusals fail over; 1310 (parallel limit) waits for a slot."""

from __future__ import annotations

import json
import time

import pytest
import requests

from jimeng_api import submission
from jimeng_api.sealing import Sealer
from jimeng_api.upstream import account_id
from tests.conftest import raw_record, services, submitter_of, wait_for
from tests.factories import (
    KEY,
    S1,
    S2,
    URLS,
    accepted,
    bearer,
    envelope,
    in_turn,
    pooled_app,
    session_of,
)

CAT = {"prompt": "a cat"}
GRACE = 0.15  # seconds a submission is looked up for (>= 10 s in production)
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def app(make_app):
    app = make_app()
    submitter_of(app).grace = GRACE
    return app


def post(app, token="acct-one", headers=None, body=CAT):
    return app.test_client().post(
        "/v1/images/generations",
        json=body,
        headers={**bearer(token), **(headers or {})},
    )


def task(app, task_id, token="acct-one"):
    return app.test_client().get(f"/v1/tasks/{task_id}", headers=bearer(token)).json


def finished_task(app, task_id, token="acct-one", timeout=5.0):
    return wait_for(
        lambda: (
            (t := task(app, task_id, token))["status"] in ("completed", "failed") and t
        ),
        timeout,
    )


# --- reconciliation by submit_id ---------------------------------------------------


def test_null_aigc_data_is_looked_up_by_submit_id_and_adopted(app, upstream):
    sent = in_turn(upstream, upstream.GENERATE, envelope({"aigc_data": None}))
    history = upstream.history()
    history.found["*"] = "h9"
    history.add("h9", raw_record(50, URLS))
    response = post(app)
    assert response.status_code == 200, response.json
    assert response.json["data"] == [{"url": u} for u in URLS]
    assert len(sent) == 1  # adopted, not sent again
    assert history.lookups[0] == [sent[0]["submit_id"]]
    assert history.polls == [["h9"]]


def test_an_error_page_then_not_found_is_resent_with_the_same_submit_id(app, upstream):
    sent = in_turn(
        upstream, upstream.GENERATE, (502, "<html>bad gateway</html>"), accepted("h1")
    )
    history = upstream.history()
    history.add("h1", raw_record(50, URLS))
    response = post(app)
    assert response.status_code == 200, response.json
    assert len(sent) == 2
    assert sent[0]["submit_id"] == sent[1]["submit_id"]  # the same submission
    assert history.lookups and all(
        ids == [sent[0]["submit_id"]] for ids in history.lookups
    )


def test_a_non_json_answer_then_not_found_is_resent(app, upstream):
    sent = in_turn(
        upstream, upstream.GENERATE, (200, "upstream connect error"), accepted("h1")
    )
    upstream.history().add("h1", raw_record(50, URLS))
    assert post(app).status_code == 200
    assert len(sent) == 2 and sent[0]["submit_id"] == sent[1]["submit_id"]


def test_an_error_page_found_by_the_lookup_is_not_resent(app, upstream):
    sent = in_turn(upstream, upstream.GENERATE, (503, "<html>busy</html>"))
    history = upstream.history()
    history.found["*"] = "h1"
    history.add("h1", raw_record(50, URLS))
    assert post(app).status_code == 200
    assert len(sent) == 1


def test_error_pages_are_resent_at_most_upstream_retries_times(app, upstream):
    sent = in_turn(upstream, upstream.GENERATE, (502, "<html>bad gateway</html>"))
    upstream.history()
    response = post(app)
    assert response.status_code == 504
    assert response.json["error"]["code"] == "submit_unconfirmed"
    assert response.headers["x-should-retry"] == "false"
    assert len(sent) == 1 + app.config["UPSTREAM_RETRIES"]
    assert len({s["submit_id"] for s in sent}) == 1


def test_a_read_timeout_then_not_found_is_never_resent(app, upstream):
    sent = in_turn(upstream, upstream.GENERATE, requests.ReadTimeout("slow"))
    history = upstream.history()
    started = time.monotonic()
    response = post(app)
    assert response.status_code == 504
    error = response.json["error"]
    assert error["code"] == "submit_unconfirmed"
    assert "not sent again" in error["message"]
    assert response.headers["x-should-retry"] == "false"
    assert len(sent) == 1
    assert len(history.lookups) >= 1  # looked up for the whole grace period
    assert time.monotonic() - started >= GRACE


def test_reconciling_stops_at_the_job_deadline(make_app, upstream):
    app = make_app(GENERATION_TIMEOUT=0.5)
    submitter_of(app).grace = 1.5  # stands for the >= 10 s of production
    in_turn(upstream, upstream.GENERATE, requests.ReadTimeout("slow"))
    upstream.history()
    started = time.monotonic()
    response = post(app)
    assert response.status_code == 504
    assert time.monotonic() - started < 1.2


def test_a_read_timeout_found_by_the_lookup_is_adopted(app, upstream):
    sent = in_turn(upstream, upstream.GENERATE, requests.ReadTimeout("slow"))
    history = upstream.history()
    history.found["*"] = "h1"
    history.add("h1", raw_record(20), raw_record(50, URLS))
    assert post(app).status_code == 200
    assert len(sent) == 1


def test_a_reset_connection_is_not_resent(app, upstream):
    reset = requests.ConnectionError("Connection reset by peer")
    sent = in_turn(upstream, upstream.GENERATE, reset)
    upstream.history()
    response = post(app)
    assert response.status_code == 504
    assert len(sent) == 1


def test_lookup_failures_count_as_not_found_and_never_resend(app, upstream):
    sent = in_turn(upstream, upstream.GENERATE, requests.ReadTimeout("slow"))
    upstream.raw(upstream.HISTORY, status=503, body="down")
    assert post(app).status_code == 504
    assert len(sent) == 1


# --- after a crash while submitting -------------------------------------------------


def orphan(app, token="acct-one", phase="submitting"):
    """A job a dead worker left in *phase* (recorded as it records them)."""
    s = services(app)
    sealer = s["generations"].sealer
    job = {
        "id": "task_" + "0" * 28 + phase[:4],
        "owner": "nobody",
        "kind": "images",
        "status": "queued",
        "phase": phase,
        "spec": {"model": "jimeng-3.0", "n": 4, "draft": {}, "response_format": "url"},
        "candidates": sealer.seal([token]),
        "account": account_id(token),
        "token": sealer.seal([token]),
        "submit_id": "6f1c1d36-9d55-4a5d-9a4e-3b8f3f2f8a10",
        "history_id": None,
        "progress": {},
        "urls": [],
        "created_at": time.time(),
        "updated_at": time.time(),
        "deadline": time.time() + 60,
    }
    s["store"].create_job(job)
    return job


def test_a_job_left_submitting_is_adopted_by_its_submit_id(app, upstream, scan):
    history = upstream.history()
    history.found["6f1c1d36-9d55-4a5d-9a4e-3b8f3f2f8a10"] = "h1"
    history.add("h1", raw_record(50, URLS))
    job = orphan(app)
    services(app)["poller"].start()
    scan()
    done = wait_for(lambda: (j := services(app)["jobs"].get(job["id"]))
                    and j["status"] == "completed" and j)  # fmt: skip
    assert done["history_id"] == "h1"
    assert done["result"]["data"] == [{"url": u} for u in URLS]
    assert upstream.calls(upstream.GENERATE) == []


def test_a_job_left_submitting_and_not_found_fails_without_resending(
    app, upstream, scan
):
    upstream.history()
    job = orphan(app)
    services(app)["poller"].start()
    scan()
    done = wait_for(lambda: (j := services(app)["jobs"].get(job["id"]))
                    and j["status"] == "failed" and j)  # fmt: skip
    assert done["error"]["code"] == "submit_unconfirmed"
    assert done["error"]["retryable"] is False
    assert upstream.calls(upstream.GENERATE) == []


def test_a_job_whose_token_cannot_be_unsealed_fails(app, upstream, scan):
    upstream.history()
    job = orphan(app)
    services(app)["store"].update_job(
        job["id"], {"token": Sealer("another secret").seal(["acct-one"])}
    )
    services(app)["poller"].start()
    scan()
    done = wait_for(lambda: (j := services(app)["jobs"].get(job["id"]))
                    and j["status"] == "failed" and j)  # fmt: skip
    assert "account is gone" in done["error"]["message"]
    assert upstream.calls(upstream.GENERATE) == []


# --- 1310: the account's parallel limit -----------------------------------------------


def test_1310_fails_over_to_another_account(app, upstream):
    sent = in_turn(
        upstream,
        upstream.GENERATE,
        envelope(None, "1310", "exceed model parallel max"),
        accepted("h1"),
    )
    upstream.history().add("h1", raw_record(50, URLS))
    response = post(app, "acct-one,acct-two")
    assert response.status_code == 200, response.json
    first, second = sent[0]["session"], sent[1]["session"]
    assert first != second
    accounts = services(app)["accounts"]
    assert accounts.limit(first) == 1  # learned: it runs one task at a time
    assert not accounts.cooling(first)  # a full account is not a broken one


def test_1310_waits_for_a_slot_then_submits(app, upstream, scan, monkeypatch):
    monkeypatch.setattr(submission, "WAIT_RETRY", 0.05)
    sent = in_turn(
        upstream,
        upstream.GENERATE,
        accepted("hA"),
        envelope(None, "1310", "exceed model parallel max"),
        accepted("hB"),
    )
    history = upstream.history()
    history.add("hA", raw_record(20))
    history.add("hB", raw_record(50, URLS[:1]))
    first = post(app, headers=ASYNC, body={**CAT, "n": 1})
    second = post(app, headers=ASYNC, body={**CAT, "n": 1})
    assert first.status_code == second.status_code == 202
    assert second.json["status"] == "queued"  # not accepted yet, not failed
    waiting = services(app)["jobs"].get(second.json["id"])
    assert waiting["phase"] == "waiting" and waiting["history_id"] is None

    scan()  # retries of the waiting job start now
    time.sleep(0.3)
    assert len(sent) == 2  # A still runs: B is not sent while the slot is taken
    assert task(app, second.json["id"])["status"] == "queued"

    history.add("hA", raw_record(50, URLS[:1]))  # A ends: its slot frees
    b = finished_task(app, second.json["id"])
    assert b["status"] == "completed", b
    assert b["result"]["data"] == [{"url": URLS[0]}]
    assert len(sent) == 3
    assert task(app, first.json["id"])["status"] == "completed"


def test_1310_past_the_deadline_is_a_retryable_429(make_app, upstream):
    app = make_app(GENERATION_TIMEOUT=1.0)  # less than a wait for a slot
    in_turn(upstream, upstream.GENERATE, envelope(None, "1310", "parallel max"))
    response = post(app)
    assert response.status_code == 429
    assert response.headers["x-should-retry"] == "true"
    assert response.headers["Retry-After"] == "30"


# --- account-level refusals fail over ------------------------------------------------


@pytest.mark.parametrize(
    ("ret", "errmsg"),
    [("1015", "login error"), ("1018", "account punished"), ("4013", "risk")],
)
def test_account_errors_fail_over_and_cool_the_account(app, upstream, ret, errmsg):
    sent = in_turn(
        upstream,
        upstream.GENERATE,
        envelope(None, ret, errmsg),
        accepted("h1"),
        accepted("h2"),
    )
    history = upstream.history()
    history.add("h1", raw_record(50, URLS))
    history.add("h2", raw_record(50, URLS))
    assert post(app, "dead-acct,alive-acct").status_code == 200
    broken, working = sent[0]["session"], sent[1]["session"]
    assert broken != working
    assert services(app)["accounts"].cooling(broken)
    assert post(app, "dead-acct,alive-acct").status_code == 200
    assert sent[2]["session"] == working  # the cooling one is tried last


def test_every_account_failing_gives_the_most_useful_error(app, upstream):
    in_turn(
        upstream,
        upstream.GENERATE,
        envelope(None, "1015", "login error"),
        envelope(None, "1006", "积分不足"),
    )
    upstream.reply(upstream.RECEIVE, None, ret="1014", errmsg="system busy")
    response = post(app, "acct-a,acct-b")
    assert response.status_code == 429  # "no credits" beats "session expired"
    assert response.json["error"]["type"] == "insufficient_quota"
    assert response.headers["x-should-retry"] == "false"


def test_insufficient_credits_claims_the_daily_grant_once_then_resubmits(app, upstream):
    sent = in_turn(
        upstream, upstream.GENERATE, envelope(None, "1006", "积分不足"), accepted("h1")
    )
    upstream.reply(upstream.RECEIVE, {"receive_quota": 60, "cur_total_credits": 60})
    upstream.history().add("h1", raw_record(50, URLS))
    response = post(app)
    assert response.status_code == 200, response.json
    assert len(upstream.calls(upstream.RECEIVE)) == 1
    assert len(sent) == 2
    assert sent[0]["submit_id"] == sent[1]["submit_id"]  # refused, so not paid
    assert upstream.calls(upstream.CREDIT) == []  # no credit check first


def test_the_daily_grant_is_not_claimed_twice_a_day(app, upstream):
    in_turn(upstream, upstream.GENERATE, envelope(None, "1006", "积分不足"))
    upstream.reply(upstream.RECEIVE, None, ret="1014", errmsg="system busy")
    first, second = post(app), post(app)
    assert first.status_code == second.status_code == 429
    assert first.json["error"]["type"] == "insufficient_quota"
    assert len(upstream.calls(upstream.RECEIVE)) == 1


def test_the_daily_claim_is_shared_by_every_app_on_one_store(make_app, upstream):
    """Two workers on one store: the claim is made once per account per day."""
    store_url = "sqlite:///" + str(make_app.tmp_path / "shared.db")
    one, two = make_app(STORE_URL=store_url), make_app(STORE_URL=store_url)
    in_turn(upstream, upstream.GENERATE, envelope(None, "1006", "积分不足"))
    upstream.reply(upstream.RECEIVE, None, ret="1014", errmsg="system busy")
    assert post(one).status_code == post(two).status_code == 429
    assert len(upstream.calls(upstream.RECEIVE)) == 1


# --- slots ---------------------------------------------------------------------------


def slots(app, token):
    return services(app)["accounts"].running(token)


def test_the_slot_is_held_while_the_job_runs_and_freed_when_it_ends(app, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    history = upstream.history()
    history.add("h1", raw_record(20))
    created = post(app, headers=ASYNC)
    assert slots(app, "acct-one") == 1
    time.sleep(0.1)
    assert slots(app, "acct-one") == 1  # polled, still running
    history.add("h1", raw_record(50, URLS))
    finished_task(app, created.json["id"])
    wait_for(lambda: slots(app, "acct-one") == 0)


@pytest.mark.parametrize(
    "script",
    [
        lambda u: in_turn(u, u.GENERATE, envelope(None, "1015", "login error")),
        lambda u: (
            in_turn(u, u.GENERATE, accepted("h1")),
            u.history().add("h1", raw_record(30, fail_code="2038")),
        ),
    ],
    ids=["submit fails", "generation fails"],
)
def test_the_slot_is_freed_when_the_job_fails(app, upstream, script):
    script(upstream)
    assert post(app).status_code in (400, 401)
    wait_for(lambda: slots(app, "acct-one") == 0)


def test_the_pool_cap_moves_jobs_to_other_sessions_then_they_wait(make_app, upstream):
    app = pooled_app(make_app, POOL_MAX_CONCURRENCY=1)
    sent = in_turn(upstream, upstream.GENERATE, accepted("h1"), accepted("h2"))
    upstream.history().add("h1", raw_record(20))
    upstream.history().add("h2", raw_record(20))
    client = app.test_client()
    headers = {**bearer(KEY), **ASYNC}
    first = client.post("/v1/images/generations", json=CAT, headers=headers)
    second = client.post("/v1/images/generations", json=CAT, headers=headers)
    third = client.post("/v1/images/generations", json=CAT, headers=headers)
    assert {s["session"] for s in sent} == {S1, S2}
    assert first.status_code == second.status_code == third.status_code == 202
    assert third.json["status"] == "queued"  # waits for a free slot
    assert len(sent) == 2  # nothing else submitted


def test_a_full_pool_past_the_deadline_is_a_retryable_429(make_app, upstream):
    app = pooled_app(make_app, (S1,), POOL_MAX_CONCURRENCY=1, GENERATION_TIMEOUT=1.0)
    sent = in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(20))
    client = app.test_client()
    client.post("/v1/images/generations", json=CAT, headers={**bearer(KEY), **ASYNC})
    response = client.post("/v1/images/generations", json=CAT, headers=bearer(KEY))
    assert response.status_code == 429
    assert response.json["error"]["code"] == "rate_limit_exceeded"
    assert response.headers["x-should-retry"] == "true"
    assert len(sent) == 1


def test_the_submitted_account_is_recorded_not_its_token(app, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(50, URLS))
    response = post(app, "acct-secret-1")
    job = services(app)["jobs"].get(response.headers["X-Task-Id"])
    assert job["account"] == account_id("acct-secret-1")
    assert job["token"] is None and job["candidates"] is None  # dropped at the end
    assert "acct-secret-1" not in json.dumps(job)
    assert session_of(upstream.calls(upstream.GENERATE)[0].request) == "acct-secret-1"
