"""Failure paths through the real server: upstream faults, deadlines, shutdown."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import threading
import time

import pytest
import requests

from tests.servers import api_env, gunicorn_server

pytestmark = pytest.mark.server
CAT = {"prompt": "a cat", "model": "jimeng-4.0"}


@pytest.fixture(scope="module")
def server(sim, tmp_path_factory):
    env = api_env(
        sim,
        DATA_DIR=str(tmp_path_factory.mktemp("hardening-data")),
        UPSTREAM_READ_TIMEOUT="1",
        UPSTREAM_RETRY_BACKOFF="0.05",
        GENERATION_TIMEOUT="6",
        GUNICORN_WORKERS="2",
    )
    with gunicorn_server(env) as running:
        yield running


def generate(server, session: str, body=CAT, timeout=60) -> requests.Response:
    return requests.post(
        server.base_url + "/v1/images/generations",
        json=body,
        headers={"Authorization": f"Bearer {session}"},
        timeout=timeout,
    )


def test_5xx_and_non_json_faults_on_every_endpoint(server, sim, fresh_sim):
    sim.configure(fault_http_5xx=0.10, fault_non_json=0.05, task_seconds=0.5)
    total = 60
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda i: generate(server, f"fault-{i}"), range(total)))
    ok = sum(r.status_code == 200 and len(r.json()["data"]) == 4 for r in results)
    stats = sim.stats()
    print(f"success rate with 10% 5xx + 5% non-JSON: {ok}/{total}")
    assert ok >= 0.95 * total
    assert stats["faults"].get("http_5xx", 0) > 0 and stats["faults"].get("non_json")
    failures = [r.text for r in results if r.status_code != 200]
    assert stats["submissions"] == total, failures  # each request charged once
    assert stats["duplicate_submit_ids"] == 0


def test_slow_generate_is_adopted_not_resubmitted(server, sim, fresh_sim):
    sim.configure(fault_slow=1.0, slow_seconds=2, fault_scope=["generate"])
    response = generate(server, "slow-submit")
    assert response.status_code == 200, response.text
    assert sim.stats()["submissions"] == 1


@pytest.mark.parametrize("fault", ["fault_slow", "fault_reset"])
def test_unanswered_upstream_ends_in_504_within_the_deadline(
    server, sim, fresh_sim, fault
):
    sim.configure(**{fault: 1.0}, slow_seconds=3)
    started = time.monotonic()
    response = generate(server, f"{fault}-session")
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.json()["error"]["type"] == "upstream_error"
    assert elapsed < 6 + 2  # GENERATION_TIMEOUT plus one read timeout of slack
    assert sim.stats()["duplicate_submit_ids"] == 0


def test_polls_that_keep_failing_end_in_504_with_the_record_id(server, sim, fresh_sim):
    sim.configure(fault_http_5xx=1.0, fault_scope=["history"], task_seconds=0.5)
    response = generate(server, "poll-faults")
    assert response.status_code == 504
    assert "record" in response.json()["error"]["message"]
    assert sim.stats()["submissions"] == 1


def _refused_within(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.1)
    return False


def _in_background(fn):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", fn()))
    thread.start()
    return thread, result


def _stream(base_url: str) -> str:
    response = requests.post(
        base_url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}], "stream": True},
        headers={"Authorization": "Bearer shutdown-stream"},
        timeout=30,
    )
    return response.text


def test_sigterm_lets_in_flight_generations_finish_and_refuses_new_ones(
    sim, fresh_sim, tmp_path
):
    sim.configure(task_seconds=5, task_jitter=0)
    env = api_env(sim, GUNICORN_GRACEFUL_TIMEOUT="20", DATA_DIR=str(tmp_path))
    with gunicorn_server(env) as server:
        plain, plain_result = _in_background(lambda: generate(server, "shutdown-a"))
        stream, stream_result = _in_background(lambda: _stream(server.base_url))
        time.sleep(1.0)
        server.proc.send_signal(signal.SIGTERM)
        port = int(server.base_url.rsplit(":", 1)[1])
        assert _refused_within(port, 2.5)  # workers notice SIGTERM within ~1 s
        assert plain.is_alive() and stream.is_alive()  # still generating
        plain.join(30)
        stream.join(30)
        server.proc.wait(30)
    assert plain_result["r"].status_code == 200
    assert len(plain_result["r"].json()["data"]) == 4
    assert stream_result["r"].count("![image_") == 4
    assert stream_result["r"].endswith("data: [DONE]\n\n")


def test_sighup_reloads_workers_without_dropping_requests(sim, fresh_sim, tmp_path):
    sim.configure(task_seconds=2, task_jitter=0)
    with gunicorn_server(api_env(sim, DATA_DIR=str(tmp_path))) as server:
        before, result = _in_background(lambda: generate(server, "hup-a"))
        time.sleep(0.5)
        os.kill(server.proc.pid, signal.SIGHUP)
        time.sleep(1.5)
        after = generate(server, "hup-b")
        before.join(30)
    assert result["r"].status_code == 200
    assert after.status_code == 200
