"""Jobs through the Flask test client: synchronous and ``Prefer: respond-async``
answers, ``/v1/tasks``, ``Idempotency-Key``, who may see a task, an unreachable
store, and what the poller delivers (partial results, repolls, deadlines)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from jimeng_api.schedule import Progress
from jimeng_api.tracking import Tracked
from jimeng_api.upstream.records import parse_record
from tests.conftest import raw_record, services, submitter_of, wait_for
from tests.factories import URLS, accepted, bearer, envelope, in_turn

CAT = {"prompt": "a cat"}
ASYNC = {"Prefer": "respond-async"}
TOKEN = "jobs-session-1"
TASK_KEYS = {
    "id", "object", "kind", "status", "progress", "partial", "created_at",
    "completed_at", "result", "error",
}  # fmt: skip


def post(client, body=CAT, headers=None, token=TOKEN, path="/v1/images/generations"):
    return client.post(path, json=body, headers={**bearer(token), **(headers or {})})


def get_task(client, task_id, token=TOKEN):
    return client.get(f"/v1/tasks/{task_id}", headers=bearer(token))


def finished(client, task_id, token=TOKEN, timeout=5.0) -> dict:
    def done():
        body = get_task(client, task_id, token).json
        return body if body["status"] in ("completed", "failed") else None

    return wait_for(done, timeout)


@pytest.fixture
def client(app):
    return app.test_client()


# --- Prefer: respond-async ------------------------------------------------------------


def test_respond_async_is_a_202_with_the_task_and_its_location(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(20), raw_record(50, URLS))
    response = post(client, headers=ASYNC)
    assert response.status_code == 202
    body = response.json
    assert set(body) == TASK_KEYS
    assert body["object"] == "task" and body["kind"] == "images"
    assert body["id"].startswith("task_")
    assert body["status"] in ("queued", "in_progress")
    assert body["result"] is None and body["error"] is None
    assert response.headers["Location"] == f"/v1/tasks/{body['id']}"

    done = finished(client, body["id"])
    assert done["status"] == "completed"
    assert done["result"]["data"] == [{"url": u} for u in URLS]
    assert done["progress"] == {"images": 4, "expected": 4, "stage": "final"}
    assert isinstance(done["completed_at"], int)


def test_the_task_result_is_exactly_the_synchronous_body(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(50, URLS))
    sync = post(client)
    assert sync.status_code == 200
    task = get_task(client, sync.headers["X-Task-Id"]).json
    assert task["result"] == sync.json


def test_respond_async_among_other_preferences(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(20))
    response = post(client, headers={"Prefer": "return=minimal, Respond-Async"})
    assert response.status_code == 202


def test_chat_completions_can_be_tasks_too(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(50, URLS[:1]))
    body = {"messages": [{"role": "user", "content": "a cat"}], "stream": True}
    response = post(client, body, ASYNC, path="/v1/chat/completions")
    assert response.status_code == 202 and response.json["kind"] == "chat"
    done = finished(client, response.json["id"])
    assert done["result"]["object"] == "chat.completion"
    assert done["result"]["choices"][0]["message"]["content"] == (
        f"![image_0]({URLS[0]})\n"
    )


def test_a_submit_failure_is_an_error_even_when_async(client, upstream):
    in_turn(upstream, upstream.GENERATE, envelope(None, "1015", "login error"))
    response = post(client, headers=ASYNC)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "session_expired"
    assert response.headers["X-Task-Id"].startswith("task_")


def test_a_failed_task_keeps_its_error(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(30, fail_code="2038"))
    created = post(client, headers=ASYNC)
    done = finished(client, created.json["id"])
    assert done["status"] == "failed" and done["result"] is None
    assert set(done["error"]) == {"message", "type", "param", "code"}
    assert done["error"]["code"] == "content_policy_violation"


def test_a_queued_task_shows_its_queue_position(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    queued = raw_record(20, queue_info={"queue_idx": 7, "queue_length": 42})
    upstream.history().add("h1", queued)
    created = post(client, headers=ASYNC)

    def shows_queue():
        progress = get_task(client, created.json["id"]).json["progress"]
        return progress if "queue_position" in progress else None

    progress = wait_for(shows_queue)
    assert progress == {
        "images": 0, "expected": 4, "stage": "queued",
        "queue_position": 7, "queue_length": 42,
    }  # fmt: skip


# --- GET / list / DELETE -------------------------------------------------------------


def test_list_tasks_newest_first_with_pagination(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(20))
    ids = []
    for _ in range(3):
        ids.append(post(client, headers=ASYNC).json["id"])
        time.sleep(0.002)  # distinct created_at
    page = client.get("/v1/tasks?limit=2", headers=bearer(TOKEN)).json
    assert page["object"] == "list"
    assert [t["id"] for t in page["data"]] == [ids[2], ids[1]]
    assert page["first_id"] == ids[2] and page["last_id"] == ids[1]
    assert page["has_more"] is True
    rest = client.get(f"/v1/tasks?limit=2&after={ids[1]}", headers=bearer(TOKEN)).json
    assert [t["id"] for t in rest["data"]] == [ids[0]] and rest["has_more"] is False
    empty = client.get("/v1/tasks", headers=bearer("someone-else")).json
    assert empty == {
        "object": "list", "data": [], "first_id": None, "last_id": None,
        "has_more": False,
    }  # fmt: skip


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "2.5"])
def test_a_bad_limit_is_a_400(client, limit):
    response = client.get(f"/v1/tasks?limit={limit}", headers=bearer(TOKEN))
    assert response.status_code == 400
    assert response.json["error"]["param"] == "limit"


def test_delete_forgets_the_task_and_stops_polling_it(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    history = upstream.history()
    history.add("h1", raw_record(20))
    task_id = post(client, headers=ASYNC).json["id"]
    wait_for(lambda: history.polls)
    deleted = client.delete(f"/v1/tasks/{task_id}", headers=bearer(TOKEN))
    assert deleted.status_code == 200
    assert deleted.json == {"id": task_id, "object": "task.deleted", "deleted": True}
    assert get_task(client, task_id).status_code == 404
    time.sleep(0.05)
    polls = len(history.polls)
    time.sleep(0.2)
    assert len(history.polls) == polls  # not polled any more
    again = client.delete(f"/v1/tasks/{task_id}", headers=bearer(TOKEN))
    assert again.status_code == 404


def test_another_caller_s_task_is_as_unknown_as_a_missing_one(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(50, URLS))
    task_id = post(client).headers["X-Task-Id"]
    other = "another-session-2"
    for response in (
        get_task(client, task_id, other),
        client.delete(f"/v1/tasks/{task_id}", headers=bearer(other)),
        get_task(client, "task_" + "0" * 32),
        get_task(client, "not-a-task-id"),
    ):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"
    assert get_task(client, task_id).status_code == 200  # still there for its owner
    assert get_task(client, task_id, f"{other},{TOKEN}").status_code == 404


def test_tasks_need_a_caller(client):
    assert client.get("/v1/tasks").status_code == 401
    assert client.get("/v1/tasks/task_x").status_code == 401


# --- Idempotency-Key ------------------------------------------------------------------


def test_an_idempotency_key_replay_is_the_same_job_submitted_once(client, upstream):
    sent = in_turn(upstream, upstream.GENERATE, accepted("h1"), accepted("h2"))
    upstream.history().add("h1", raw_record(50, URLS))
    headers = {"Idempotency-Key": "order-42"}
    first = post(client, headers=headers)
    second = post(client, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json == first.json
    assert second.headers["X-Task-Id"] == first.headers["X-Task-Id"]
    async_replay = post(client, headers={**headers, **ASYNC})
    assert async_replay.status_code == 202
    assert async_replay.json["id"] == first.headers["X-Task-Id"]
    assert len(sent) == 1  # nothing submitted again
    listed = client.get("/v1/tasks", headers=bearer(TOKEN)).json["data"]
    assert len(listed) == 1


def test_an_async_replay_while_running_returns_the_running_task(client, upstream):
    sent = in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(20))
    headers = {"Idempotency-Key": "k-running", **ASYNC}
    first, second = post(client, headers=headers), post(client, headers=headers)
    assert second.status_code == 202 and second.json["id"] == first.json["id"]
    assert len(sent) == 1


def test_an_idempotency_key_reused_with_another_body_is_a_422(client, upstream):
    sent = in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(50, URLS))
    headers = {"Idempotency-Key": "order-43"}
    assert post(client, headers=headers).status_code == 200
    response = post(client, {"prompt": "a dog"}, headers)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "idempotency_key_reused"
    assert response.json["error"]["param"] == "Idempotency-Key"
    assert response.headers["x-should-retry"] == "false"
    assert len(sent) == 1


def test_a_refused_key_reuse_leaves_no_job_behind(client, upstream, scan):
    sent = in_turn(upstream, upstream.GENERATE, accepted("h1"), accepted("h2"))
    upstream.history().add("h1", raw_record(50, URLS))
    upstream.history().add("h2", raw_record(50, URLS))
    headers = {"Idempotency-Key": "order-44"}
    assert post(client, headers=headers).status_code == 200
    assert post(client, {"prompt": "a dog"}, headers).status_code == 422
    scan()  # the poller looks for unsubmitted jobs
    time.sleep(0.3)
    listed = client.get("/v1/tasks", headers=bearer(TOKEN)).json["data"]
    assert [t["status"] for t in listed] == ["completed"]
    assert len(sent) == 1  # the refused request was never submitted


def test_idempotency_keys_belong_to_their_caller(client, upstream):
    sent = in_turn(upstream, upstream.GENERATE, accepted("h1"), accepted("h2"))
    upstream.history().add("h1", raw_record(50, URLS))
    upstream.history().add("h2", raw_record(50, URLS))
    headers = {"Idempotency-Key": "shared-name"}
    mine = post(client, headers=headers)
    theirs = post(client, {"prompt": "a dog"}, headers, token="another-session-2")
    assert mine.status_code == theirs.status_code == 200
    assert mine.headers["X-Task-Id"] != theirs.headers["X-Task-Id"]
    assert len(sent) == 2


@pytest.mark.parametrize("key", ["", "   ", "k" * 257, "tab\there"])
def test_a_malformed_idempotency_key_is_a_400(client, upstream, key):
    response = post(client, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json["error"]["param"] == "Idempotency-Key"
    assert upstream.calls(upstream.GENERATE) == []


def test_a_key_whose_task_expired_starts_a_new_task(make_app, upstream):
    app = make_app(JOB_TTL=0.2)
    client = app.test_client()
    sent = in_turn(upstream, upstream.GENERATE, accepted("h1"), accepted("h2"))
    upstream.history().add("h1", raw_record(50, URLS))
    upstream.history().add("h2", raw_record(50, URLS))
    headers = {"Idempotency-Key": "k-expiring"}
    first = post(client, headers=headers)
    time.sleep(0.3)
    second = post(client, headers=headers)
    assert second.status_code == 200
    assert second.headers["X-Task-Id"] != first.headers["X-Task-Id"]
    assert len(sent) == 2


# --- the store is down ----------------------------------------------------------------


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_store_is_a_503_and_nothing_is_submitted(
    make_app, upstream, closed_port
):
    app = make_app(
        STORE_URL=f"redis://127.0.0.1:{closed_port}/0",
        STORE_SECRET="a-shared-secret",
    )
    client = app.test_client()
    started = time.monotonic()
    for response in (
        post(client),
        post(client, headers=ASYNC),
        post(client, {"messages": [{"role": "user", "content": "x"}]},
             path="/v1/chat/completions"),
        get_task(client, "task_" + "0" * 32),
        client.get("/v1/tasks", headers=bearer(TOKEN)),
    ):  # fmt: skip
        assert response.status_code == 503, response.get_data(as_text=True)
        error = response.json["error"]
        assert error["code"] == "store_unavailable"
        assert set(error) == {"message", "type", "param", "code"}
    assert time.monotonic() - started < 10
    assert upstream.calls(upstream.GENERATE) == []
    assert client.get("/ping").status_code == 200  # the process still serves
    assert client.get("/metrics").status_code == 200


def test_redis_without_a_store_secret_refuses_to_start(make_app, closed_port):
    with pytest.raises(ValueError, match="STORE_SECRET"):
        make_app(STORE_URL=f"redis://127.0.0.1:{closed_port}/0", STORE_SECRET="")


# --- what the poller delivers ---------------------------------------------------------


def test_images_that_stop_coming_are_delivered_as_a_partial_result(make_app, upstream):
    app = make_app(STALL_SECONDS=0.3)
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(20), raw_record(45, URLS[:3]))
    response = post(app.test_client())
    assert response.status_code == 200, response.json
    assert response.json["data"] == [{"url": u} for u in URLS[:3]]
    assert response.headers["X-Jimeng-Partial"] == "3/4"
    task = get_task(app.test_client(), response.headers["X-Task-Id"]).json
    assert task["partial"] == "3/4"


def test_a_failed_record_with_images_delivers_those_images(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(45, URLS[:1]), raw_record(30, URLS[:2]))
    response = post(client)
    assert response.status_code == 200, response.json
    assert response.json["data"] == [{"url": u} for u in URLS[:2]]  # paid for
    assert response.headers["X-Jimeng-Partial"] == "2/4"


def test_all_images_need_no_partial_header(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.history().add("h1", raw_record(50, URLS))
    response = post(client)
    assert "X-Jimeng-Partial" not in response.headers


def test_a_finished_record_without_item_list_is_polled_again(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    history = upstream.history()
    history.add("h1", raw_record(50, item_list=None), raw_record(50, URLS))
    response = post(client)
    assert response.status_code == 200, response.json
    assert response.json["data"] == [{"url": u} for u in URLS]
    assert len(history.polls) == 2


def test_a_record_that_never_lists_its_images_fails_after_a_few_polls(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    history = upstream.history()
    history.add("h1", raw_record(50, item_list=None))
    response = post(client)
    assert response.status_code == 502
    assert response.json["error"]["code"] == "generation_failed"
    assert response.headers["x-should-retry"] == "false"
    assert len(history.polls) == 3  # the first poll and two more


def test_status_45_with_every_image_finishes_without_waiting_for_50(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    history = upstream.history()
    history.add("h1", raw_record(45, URLS[:2]))
    response = post(client, {**CAT, "n": 2})
    assert len(response.json["data"]) == 2
    assert len(history.polls) == 1


def test_a_poll_batches_every_running_job_of_an_account(make_app, upstream):
    app = make_app(POLL_EXPECTED_SECONDS=1.0)  # first polls 0.4 s after acceptance
    client = app.test_client()
    in_turn(upstream, upstream.GENERATE, accepted("h1"), accepted("h2"), accepted("h3"))
    history = upstream.history()
    for history_id in ("h1", "h2", "h3"):
        history.add(history_id, raw_record(50, URLS))
    ids = [post(client, headers=ASYNC).json["id"] for _ in range(3)]
    for task_id in ids:
        assert finished(client, task_id)["status"] == "completed"
    assert sorted(history.polls[0]) == ["h1", "h2", "h3"]
    assert len(history.polls) == 1


def test_the_deadline_is_a_504_naming_the_record(make_app, upstream):
    app = make_app(GENERATION_TIMEOUT=0.3)
    sent = in_turn(upstream, upstream.GENERATE, accepted("h-slow"))
    upstream.history().add("h-slow", raw_record(20))
    response = post(app.test_client())
    assert response.status_code == 504
    assert "h-slow" in response.json["error"]["message"]
    assert response.headers["x-should-retry"] == "false"
    assert len(sent) == 1


def test_a_sync_wait_that_ends_first_leaves_the_task_running(make_app, upstream):
    app = make_app(SYNC_WAIT_TIMEOUT=0.2)
    client = app.test_client()
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    history = upstream.history()
    history.add("h1", raw_record(20))
    response = post(client)
    assert response.status_code == 504
    error = response.json["error"]
    task_id = response.headers["X-Task-Id"]
    assert error["code"] == "still_running" and task_id in error["message"]
    assert response.headers["x-should-retry"] == "false"
    history.add("h1", raw_record(50, URLS))
    assert finished(client, task_id)["result"]["data"] == [{"url": u} for u in URLS]


def test_poll_failures_are_retried_and_never_resubmit(client, upstream):
    sent = in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.raw(upstream.HISTORY, status=502, body="<html>oops</html>")
    upstream.raw(upstream.HISTORY, status=200, body="garbage")
    upstream.record("h1", 50, URLS)
    assert post(client).status_code == 200
    assert len(sent) == 1


def test_a_missing_record_keeps_polling(client, upstream):
    in_turn(upstream, upstream.GENERATE, accepted("h1"))
    upstream.reply(upstream.HISTORY, {})
    upstream.record("h1", 50, URLS)
    assert post(client).status_code == 200


# --- bugs found while writing these tests ---------------------------------------------


def test_the_poller_never_takes_over_a_job_its_request_is_submitting(
    app, upstream, scan
):
    submitter_of(app).grace = 0.1
    services(app)["poller"].start()
    scan(0.02)
    ends = []
    services(app)["jobs"].on_finish.append(lambda job: ends.append(job["status"]))

    def slow_accept():
        time.sleep(0.3)  # a slow generate call (0.5-2 s are common upstream)
        return 200, {}, json.dumps(accepted("h1"))

    sent = in_turn(upstream, upstream.GENERATE, slow_accept)
    history = upstream.history()
    history.add("h1", raw_record(50, URLS))
    response = post(app.test_client())
    assert response.status_code == 200
    time.sleep(0.2)
    assert len(sent) == 1  # paid once
    assert history.lookups == []  # nothing to reconcile: the answer was clear
    assert ends == ["completed"]  # no "failed" (and no webhook saying so) first


def test_a_finished_task_teaches_its_duration_not_the_polling_lag(app):
    poller = services(app)["poller"]
    tracked = Tracked(
        job_id="task_x", account="a", token="t", history_id="h1",
        model="jimeng-3.0", accepted_at=1000.0, deadline=1e12,
        progress=Progress(expected=4), last_growth=1000.0,
    )  # fmt: skip
    poller.tracked["task_x"] = tracked
    poller.observe(tracked, parse_record(raw_record(20)), 1010.0)
    poller.observe(tracked, parse_record(raw_record(50, URLS)), 1030.0)
    # it finished between the polls at 10 s and 30 s: 20 s is the best guess
    assert poller.durations._samples["jimeng-3.0"] == [20.0]


def _running_task(app, client, upstream):
    """An async task whose record stays in processing until the test says."""
    upstream.submitted("h1")
    history = upstream.history()
    history.add("h1", raw_record(20))
    task = post(client, headers=ASYNC).json
    poller = services(app)["poller"]
    wait_for(lambda: task["id"] in poller.tracked, 3)
    return task, poller, history


def test_a_poll_lease_that_ran_out_is_taken_again(app, client, upstream):
    """Found in CI: a lost lease dropped the job, and nothing polled it again
    until the 600 s wait ended."""
    task, poller, history = _running_task(app, client, upstream)
    account = poller.tracked[task["id"]].account
    poller.store.release_lease("poll:" + account, poller.holder)  # as if expired
    poller.renew()
    assert task["id"] in poller.tracked
    assert poller.store.lease_holder("poll:" + account) == poller.holder
    history.states["h1"] = [raw_record(50, URLS)]
    assert finished(client, task["id"])["status"] == "completed"


def test_a_lease_another_worker_took_leaves_the_jobs_to_it(app, client, upstream):
    task, poller, history = _running_task(app, client, upstream)
    account = poller.tracked[task["id"]].account
    poller.store.release_lease("poll:" + account, poller.holder)
    assert poller.store.acquire_lease("poll:" + account, "another-worker", 60)
    poller.renew()
    assert task["id"] not in poller.tracked and account not in poller.accounts
    polls = len(history.polls)
    time.sleep(0.3)
    assert len(history.polls) == polls  # the other worker polls it now


# --- waiters ---------------------------------------------------------------------


def _waiting(app):
    from jimeng_api.jobs import Caller

    jobs = services(app)["jobs"]
    job, _ = jobs.create(Caller("owner-x", None), "images", {"n": 1}, sealed=None)
    jobs.polled_here = lambda job_id: True  # rereads every 5 s only
    reads = []
    get_job = jobs.store.get_job
    jobs.store.get_job = lambda job_id: reads.append(job_id) or get_job(job_id)
    return jobs, job, reads


def test_a_waiter_gets_each_change_of_its_process_without_a_store_read(app):
    jobs, job, reads = _waiting(app)
    waiter = jobs.wait(job, timeout=10)
    assert next(waiter)["status"] == "queued"
    # the change comes while the waiter's consumer is busy: it is not lost
    jobs.update(job["id"], progress={"images": 1})
    started = time.monotonic()
    assert next(waiter)["progress"] == {"images": 1}
    threading.Timer(0.1, lambda: jobs.finish(job["id"], status="completed")).start()
    assert next(waiter)["status"] == "completed"
    assert time.monotonic() - started < 1.0  # not the 5 s reread
    assert reads == []


def test_a_waiter_rereads_when_another_process_changes_the_job(app):
    jobs, job, reads = _waiting(app)
    jobs.polled_here = lambda job_id: False  # polled elsewhere: every 0.5 s
    waiter = jobs.wait(job, timeout=10)
    next(waiter)
    jobs.store.update_job(job["id"], {"status": "completed", "updated_at": 1.0})
    started = time.monotonic()
    assert next(waiter)["status"] == "completed"
    assert time.monotonic() - started < 1.5 and reads


def test_a_waiter_with_a_tick_yields_none_on_a_steady_beat(app):
    """The SSE keep-alive goes out when a None comes about an interval after
    the last write: changes in between (a progress update every poll) must
    not push the beat back, and a timer that fires early must not skip it."""
    jobs, job, _ = _waiting(app)
    waiter = jobs.wait(job, timeout=10, tick=0.2)
    started = time.monotonic()
    next(waiter)
    threading.Timer(0.1, lambda: jobs.update(job["id"], progress={"images": 0})).start()
    assert next(waiter)["progress"] == {"images": 0}  # at 0.1 s
    beats = []
    for _ in range(4):
        assert next(waiter) is None
        beats.append(time.monotonic() - started)
    assert [round(b, 1) for b in beats] == [0.2, 0.4, 0.6, 0.8], beats
