"""Fixtures: a fresh in-process simulator (threaded server) and a signed client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator import RunningSimulator, SimSettings, run_simulator_in_thread
from simulator.testing import SimClient

FAST = {"task_seconds": 0.5, "task_jitter": 0.2, "seed": 7}


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    running = run_simulator_in_thread(SimSettings(**FAST))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(sim: RunningSimulator) -> Iterator[SimClient]:
    with SimClient(sim.base_url) as c:
        yield c
