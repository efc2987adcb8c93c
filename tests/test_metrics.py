"""GET /metrics: Prometheus text, optional token, aggregated across workers."""

from __future__ import annotations

import re

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import api_env, gunicorn_server

URLS = ["https://p9-dreamina-sign.byteimg.com/img/0.jpeg"]


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def generate_twice(client, upstream) -> None:
    """One generation that succeeds and one the content filter stops."""
    upstream.submitted("h1")
    upstream.record("h1", 50, URLS)
    assert (
        client.post("/v1/images/generations", json={"prompt": "x"}).status_code == 200
    )
    upstream.submitted("h2")
    upstream.record("h2", 30, fail_code="2038")
    assert (
        client.post("/v1/images/generations", json={"prompt": "x"}).status_code == 400
    )


def test_metrics_count_requests_upstream_calls_and_jobs(client, upstream):
    before = client.get("/metrics").get_data(as_text=True)
    generate_twice(client, upstream)
    text = client.get("/metrics").get_data(as_text=True)

    def grew(name, **labels):
        return sample(text, name, **labels) - sample(before, name, **labels)

    route = "/v1/images/generations"
    assert grew("jimeng_api_requests_total", route=route, status="200") == 1
    assert grew("jimeng_api_requests_total", route=route, status="400") == 1
    assert grew("jimeng_api_upstream_calls_total", endpoint="generate", result="0") == 2
    assert grew("jimeng_api_job_events_total", kind="images", event="created") == 2
    assert grew("jimeng_api_job_events_total", kind="images", event="completed") == 1
    assert grew("jimeng_api_job_events_total", kind="images", event="failed") == 1
    # read from the store at scrape time
    assert sample(text, "jimeng_api_jobs", status="completed") == 1
    assert sample(text, "jimeng_api_jobs", status="failed") == 1
    assert sample(text, "jimeng_api_jobs", status="in_progress") == 0


def test_generation_failures_and_durations_are_measured(client, upstream):
    before = client.get("/metrics").get_data(as_text=True)
    generate_twice(client, upstream)
    text = client.get("/metrics").get_data(as_text=True)

    def grew(name, **labels):
        return sample(text, name, **labels) - sample(before, name, **labels)

    assert grew("jimeng_api_generation_failures_total", reason="content_filtered") == 1
    assert grew("jimeng_api_generation_seconds_count", outcome="ok") == 1
    assert sample(text, "jimeng_api_generations_in_flight") == 0


def test_invented_methods_do_not_create_new_series(client):
    client.open("/ping", method="BREW")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="BREW"' not in text
    assert sample(text, "jimeng_api_requests_total", method="other") >= 1


def test_metrics_token_is_required_when_set(make_app):
    client = make_app(METRICS_TOKEN="m-secret").test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer m-secret"})
    assert ok.status_code == 200 and b"jimeng_api_requests_total" in ok.data


@pytest.mark.server
def test_workers_are_aggregated(sim, tmp_path):
    env = api_env(sim, GUNICORN_WORKERS="2", DATA_DIR=str(tmp_path))
    with gunicorn_server(env) as server:
        for _ in range(20):
            requests.get(server.base_url + "/ping", timeout=5)  # new connection each
        scrapes = [
            requests.get(server.base_url + "/metrics", timeout=5).text for _ in range(6)
        ]
        pids = set(re.findall(r'pid="(\d+)"', scrapes[-1]))
    counts = {
        sample(t, "jimeng_api_requests_total", route="/ping", status="200")
        for t in scrapes
    }
    # every scrape, whichever worker serves it, sees all 20 (+ the readiness
    # ping(s): one, or two when the first took longer than its 1 s timeout)
    assert len(counts) == 1 and 21 <= counts.pop() <= 23, counts
    assert not pids  # summed, not per process
