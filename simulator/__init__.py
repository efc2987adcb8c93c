"""Offline simulator of the Jimeng web upstream (protocol doc §1–5, §10).

Usage: ``python -m jimeng_api.simulator --host 127.0.0.1 --port 8001`` or, in
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
