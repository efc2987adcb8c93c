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


def test_metrics_count_requests_upstream_calls_and_failures(client, upstream):
    before = client.get("/metrics").get_data(as_text=True)
    upstream.generation("h1", URLS)
    client.post("/v1/images/generations", json={"prompt": "x"})
    upstream.submitted("h2")
    upstream.record("h2", 30, fail_code="2038")
    client.post("/v1/images/generations", json={"prompt": "x"})
    text = client.get("/metrics").get_data(as_text=True)

    def grew(name, **labels):
        return sample(text, name, **labels) - sample(before, name, **labels)

    route = "/v1/images/generations"
    assert grew("jimeng_api_requests_total", route=route, status="200") == 1
    assert grew("jimeng_api_requests_total", route=route, status="400") == 1
    assert grew("jimeng_api_upstream_calls_total", endpoint="generate", result="0") == 2
    assert grew("jimeng_api_generation_failures_total", reason="content_filtered") == 1
    assert grew("jimeng_api_generation_seconds_count", outcome="ok") == 1
    assert sample(text, "jimeng_api_generations_in_flight") == 0


def test_metrics_token_is_required_when_set(app):
    app.config["METRICS_TOKEN"] = "m-secret"
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer m-secret"})
    assert ok.status_code == 200 and b"jimeng_api_requests_total" in ok.data


@pytest.mark.server
def test_workers_are_aggregated(sim):
    with gunicorn_server(api_env(sim, GUNICORN_WORKERS="2")) as server:
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
    # every scrape, whichever worker serves it, sees all 20 (+1 readiness ping)
    assert counts == {21.0}, counts
    assert not pids  # summed, not per process
