"""Durable jobs through the real server (gunicorn + gevent) on the simulator:
ambiguous submits, a killed worker, a restart, two instances on one Redis, and
per-account limits across workers. Every test counts what Jimeng charged."""

from __future__ import annotations

import os
import signal
import threading
import time

import openai
import pytest
import requests

from jimeng_api.store import open_store
from jimeng_api.upstream import account_id
from tests.redis_server import redis_installed, redis_server
from tests.servers import api_env, gunicorn_server

pytestmark = pytest.mark.server

TOKEN = "durable-session-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ASYNC = {**AUTH, "Prefer": "respond-async"}
KEY = "sk-durable-key"


def env(sim, data_dir, **extra):
    return api_env(
        sim,
        DATA_DIR=str(data_dir),
        LEASE_TTL="2",
        POLL_EXPECTED_SECONDS="2",
        POLL_FINISHING_INTERVAL="0.2",
        POLL_MIN_INTERVAL="0.2",
        **extra,
    )


def sdk(server, token=TOKEN, **kwargs):
    return openai.OpenAI(
        base_url=server.base_url + "/v1", api_key=token, timeout=60, **kwargs
    )


def submissions(sim) -> int:
    return sim.stats()["submissions"]


def wait_task(server, task_id, headers=AUTH, timeout=40.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        task = requests.get(
            f"{server.base_url}/v1/tasks/{task_id}", headers=headers, timeout=10
        ).json()
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish: {task}")


def create_async(server, prompt, headers=ASYNC, **body):
    response = requests.post(
        server.base_url + "/v1/images/generations",
        json={"prompt": prompt, "n": 1, **body},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/tasks/{response.json()['id']}"
    return response.json()


def test_null_aigc_data_is_adopted_by_submit_id_and_paid_once(fresh_sim, tmp_path):
    fresh_sim.configure(
        task_seconds=1.0, fault_null_aigc_data=1.0, fault_scope=["generate"]
    )
    with gunicorn_server(env(fresh_sim, tmp_path)) as server:
        result = sdk(server).images.generate(prompt="a lighthouse", n=1)
    assert len(result.data) == 1 and result.data[0].url
    assert submissions(fresh_sim) == 1
    assert fresh_sim.stats()["duplicate_submit_ids"] == 0


def test_a_read_timeout_after_acceptance_is_adopted_not_resent(fresh_sim, tmp_path):
    fresh_sim.configure(
        task_seconds=1.0, fault_slow=1.0, slow_seconds=2.0, fault_scope=["generate"]
    )
    settings = env(fresh_sim, tmp_path, UPSTREAM_READ_TIMEOUT="0.5")
    with gunicorn_server(settings) as server:
        result = sdk(server).images.generate(prompt="a slow lighthouse", n=1)
    assert len(result.data) == 1
    assert submissions(fresh_sim) == 1


def test_a_killed_worker_s_job_finishes_elsewhere_and_a_retry_collects_it(
    fresh_sim, tmp_path
):
    fresh_sim.configure(task_seconds=4.0, task_jitter=0.0)
    settings = env(fresh_sim, tmp_path, GUNICORN_WORKERS="2")
    with gunicorn_server(settings) as server:
        headers = {**ASYNC, "Idempotency-Key": "kill-me"}
        task = create_async(server, "a durable cat", headers=headers)
        store = open_store("", str(tmp_path))
        holder = store.lease_holder("poll:" + account_id(TOKEN))
        assert holder, "the submitting worker polls the account"
        os.kill(int(holder.split(":")[1]), signal.SIGKILL)
        # the SDK retries the same request (connection errors included) with
        # the same Idempotency-Key
        retry = sdk(server, max_retries=5).images.with_raw_response.generate(
            prompt="a durable cat", n=1, extra_headers={"Idempotency-Key": "kill-me"}
        )
        assert retry.headers["X-Task-Id"] == task["id"]
        assert len(retry.parse().data) == 1
    assert submissions(fresh_sim) == 1


def test_pending_async_tasks_finish_after_a_restart(fresh_sim, tmp_path):
    fresh_sim.configure(task_seconds=3.0, task_jitter=0.0)
    settings = env(fresh_sim, tmp_path, GUNICORN_GRACEFUL_TIMEOUT="1")
    with gunicorn_server(settings) as server:
        tasks = [create_async(server, f"restart {i}") for i in range(3)]
    with gunicorn_server(settings) as server:
        finished = [wait_task(server, t["id"]) for t in tasks]
    assert [t["status"] for t in finished] == ["completed"] * 3
    assert all(len(t["result"]["data"]) == 1 for t in finished)
    assert submissions(fresh_sim) == 3


def _never_overlapping(sim, session) -> None:
    stats = requests.get(sim.base_url + "/__sim/stats", timeout=10).json()
    tasks = [t for t in stats["tasks"].values() if t["session"] == session]
    spans = sorted((t["created"], t["finished"]) for t in tasks)
    assert len(spans) >= 2
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 0.05, f"two tasks at once on one account: {spans}"


def test_pool_max_concurrency_holds_across_workers(fresh_sim, tmp_path):
    fresh_sim.configure(task_seconds=1.5, task_jitter=0.0)
    settings = env(
        fresh_sim,
        tmp_path,
        GUNICORN_WORKERS="2",
        JIMENG_SESSION_IDS=TOKEN,
        API_KEYS=KEY,
        POOL_MAX_CONCURRENCY="1",
    )
    headers = {"Authorization": f"Bearer {KEY}", "Prefer": "respond-async"}
    with gunicorn_server(settings) as server:
        tasks = [create_async(server, f"one at a time {i}", headers) for i in range(3)]
        done = [wait_task(server, t["id"], headers, timeout=60) for t in tasks]
    assert [t["status"] for t in done] == ["completed"] * 3
    _never_overlapping(fresh_sim, TOKEN)


@pytest.mark.skipif(
    not redis_installed() and not os.environ.get("CI"), reason="no redis-server"
)
def test_two_instances_on_one_redis_share_tasks_and_limits(fresh_sim, tmp_path):
    fresh_sim.configure(task_seconds=1.5, task_jitter=0.0)
    with redis_server() as url:
        common = dict(
            STORE_URL=url,
            STORE_SECRET="shared-secret-for-tests",
            JIMENG_SESSION_IDS=TOKEN,
            API_KEYS=KEY,
            POOL_MAX_CONCURRENCY="1",
        )
        headers = {"Authorization": f"Bearer {KEY}", "Prefer": "respond-async"}
        with (
            gunicorn_server(env(fresh_sim, tmp_path / "a", **common)) as one,
            gunicorn_server(env(fresh_sim, tmp_path / "b", **common)) as two,
        ):
            results: list[dict] = []
            threads = [
                threading.Thread(
                    target=lambda s=s, i=i: results.append(
                        create_async(s, f"shared {i}", headers)
                    )
                )
                for i, s in enumerate((one, two, one, two))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            done = [wait_task(two, t["id"], headers, timeout=60) for t in results]
            listed = requests.get(one.base_url + "/v1/tasks", headers=headers).json()
    assert [t["status"] for t in done] == ["completed"] * 4
    assert {t["id"] for t in listed["data"]} >= {t["id"] for t in results}
    assert submissions(fresh_sim) == 4
    _never_overlapping(fresh_sim, TOKEN)


class Receiver:
    """A local webhook receiver that fails its first delivery with a 500."""

    def __init__(self) -> None:
        import http.server

        self.hits: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.hits.append((dict(self.headers), body))
                self.send_response(500 if len(receiver.hits) == 1 else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_finished_task_is_posted_to_its_signed_webhook_with_retry(
    fresh_sim, tmp_path
):
    import json

    from jimeng_api.webhooks import verify

    fresh_sim.configure(task_seconds=0.5)
    receiver = Receiver()
    settings = env(
        fresh_sim,
        tmp_path,
        WEBHOOK_SECRET="whsec-test",
        WEBHOOK_ALLOW_PRIVATE="true",
        WEBHOOK_RETRY_BACKOFF="0.2",
    )
    try:
        with gunicorn_server(settings) as server:
            task = create_async(server, "a hooked fish", callback_url=receiver.url)
            end = time.monotonic() + 30
            while len(receiver.hits) < 2 and time.monotonic() < end:
                time.sleep(0.1)
    finally:
        receiver.close()
    assert len(receiver.hits) == 2, "one failed delivery, then a retry"
    headers, body = receiver.hits[-1]
    payload = json.loads(body)
    assert payload["id"] == task["id"] and payload["status"] == "completed"
    assert payload["result"]["data"][0]["url"]
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify(
        "whsec-test", lower["x-webhook-timestamp"], body, lower["x-signature-256"]
    )
    assert not verify(
        "other", lower["x-webhook-timestamp"], body, lower["x-signature-256"]
    )


def test_a_sync_request_that_waits_too_long_names_its_task(fresh_sim, tmp_path):
    fresh_sim.configure(task_seconds=4.0, task_jitter=0.0)
    settings = env(fresh_sim, tmp_path, SYNC_WAIT_TIMEOUT="1")
    with gunicorn_server(settings) as server:
        response = requests.post(
            server.base_url + "/v1/images/generations",
            json={"prompt": "a patient snail", "n": 1},
            headers=AUTH,
            timeout=30,
        )
        assert response.status_code == 504
        assert response.headers["x-should-retry"] == "false"
        task_id = response.headers["X-Task-Id"]
        assert task_id in response.json()["error"]["message"]
        assert wait_task(server, task_id)["status"] == "completed"
    assert submissions(fresh_sim) == 1


def test_more_than_four_images_are_two_submits_merged_in_one_answer(
    fresh_sim, tmp_path
):
    fresh_sim.configure(task_seconds=1.0)
    with gunicorn_server(env(fresh_sim, tmp_path, GUNICORN_WORKERS="2")) as server:
        result = sdk(server).images.generate(
            model="jimeng-4.0", prompt="eight foxes", n=8
        )
    assert len(result.data) == 8
    assert len({image.url for image in result.data}) == 8
    assert submissions(fresh_sim) == 2  # 4 + 4, each paid once
    assert fresh_sim.stats()["duplicate_submit_ids"] == 0
