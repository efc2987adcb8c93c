"""The CLI (gevent) server as a subprocess: flags, hundreds of concurrent polls."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from simulator import start_simulator_process, stop_simulator_process
from simulator.testing import SimClient

pytestmark = pytest.mark.server
CONCURRENT = 300


@pytest.fixture(scope="module")
def cli_sim() -> Iterator[str]:
    proc, base_url = start_simulator_process(
        [
            "--task-seconds",
            "0.5",
            "--task-jitter",
            "0",
            "--seed",
            "5",
            "--blocked-words",
            "nope,never",
            "--initial-credits",
            "500",
            "--stall-seconds",
            "30",
            "--parallel-limit-ret",
            "1010",
            "--time-scale",
            "1",
        ]
    )
    try:
        yield base_url
    finally:
        stop_simulator_process(proc)


@pytest.fixture
def cli_client(cli_sim: str) -> Iterator[SimClient]:
    with SimClient(cli_sim) as client:
        client.sim("reset", {"restore_settings": True})
        yield client


def test_cli_flags_applied(cli_client) -> None:
    config = cli_client.sim("config")
    assert config["task_seconds"] == 0.5 and config["seed"] == 5
    assert config["blocked_words"] == ["nope", "never"]
    assert config["initial_credits"] == 500 and config["strict"] is True
    assert config["stall_seconds"] == 30 and config["parallel_limit_ret"] == "1010"
    assert config["time_scale"] == 1 and config["image_size"] == 256


def test_hundreds_of_simultaneous_polls(cli_client) -> None:
    hid = cli_client.submit(gen_count=4)
    barrier = threading.Barrier(CONCURRENT)

    def poll(_: int) -> tuple[int, str]:
        with SimClient(cli_client.base_url, timeout=30) as c:
            barrier.wait(timeout=30)
            response = c.post("/mweb/v1/get_history_by_ids", {"history_ids": [hid]})
            return response.status_code, response.json()["ret"]

    with ThreadPoolExecutor(CONCURRENT) as pool:
        results = list(pool.map(poll, range(CONCURRENT)))
    assert results == [(200, "0")] * CONCURRENT
    stats = cli_client.stats()
    assert stats["polls"] == CONCURRENT and stats["violations"] == []
    assert cli_client.wait(hid)["status"] == 50


def test_reset_fault_under_gevent(cli_client) -> None:
    cli_client.configure(fault_reset=1.0, fault_scope="commerce")
    with pytest.raises(requests.ConnectionError):
        cli_client.post("/commerce/v1/benefits/user_credit", {})
    cli_client.configure(fault_reset=0.0)
    assert cli_client.call("/commerce/v1/benefits/user_credit", {})["ret"] == "0"


def test_slow_fault_does_not_block_other_requests(cli_client) -> None:
    cli_client.configure(fault_slow=1.0, slow_seconds=3.0, fault_scope="commerce")
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(cli_client.post, "/commerce/v1/benefits/user_credit", {})
        with SimClient(cli_client.base_url) as other:
            hid = other.submit()  # answered while the slow call sleeps
            assert other.history([hid])["ret"] == "0"
        assert not slow.done()
        assert slow.result(timeout=10).json()["ret"] == "0"
