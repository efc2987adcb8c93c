"""Compatibility entry point for ``python bench/bench.py [old flags]``: the
harness is the package ``bench/`` now (``python -m bench burst …``). This file
runs the ``burst`` scenario with the old flags (``--quick``, ``--levels``,
``--task-seconds``, ``--sse-n``, ``--b64-n``, ``--out`` …) until
tests/test_bench.py calls ``python -m bench burst`` itself; then delete it."""

import os
import sys

if __name__ == "__main__":
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    import runpy

    sys.argv = [sys.argv[0], "burst", *sys.argv[1:]]
    runpy.run_module("bench", run_name="__main__", alter_sys=True)
