"""The four scenarios of issue 19; each module has ``NAME``, ``add_arguments``,
``finish_args``, ``run``, ``SHORT`` (its arguments in ``make bench``), ``TINY``
(a seconds-long run for the tests) and ``AGGREGATE`` (figures whose spread over
runs the report shows)."""

from __future__ import annotations

from . import burst, realistic, restart, soak

SCENARIOS = {m.NAME: m for m in (realistic, burst, soak, restart)}
