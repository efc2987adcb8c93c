"""Offline simulator of the Jimeng web upstream (jimeng-protocol.md §1–5, §10 and
protocol-2026-12.md §2–§4). A top-level package that imports nothing from the
product (``jimeng_api``).

Usage: ``python -m simulator --host 127.0.0.1 --port 8001`` or, in
process, :func:`create_simulator` / :func:`run_simulator_in_thread` /
:func:`start_simulator_process`. Introspection lives under ``/__sim/``.
"""

from __future__ import annotations

from .app import SimulatorApp, create_simulator
from .server import (
    RunningSimulator,
    run_simulator_in_thread,
    start_simulator_process,
    stop_simulator_process,
)
from .settings import KNOWN_MODELS, SimSettings
from .state import SimClock, SimState
from .wire import compute_sign

__all__ = [
    "KNOWN_MODELS",
    "RunningSimulator",
    "SimClock",
    "SimSettings",
    "SimState",
    "SimulatorApp",
    "compute_sign",
    "create_simulator",
    "run_simulator_in_thread",
    "start_simulator_process",
    "stop_simulator_process",
]
