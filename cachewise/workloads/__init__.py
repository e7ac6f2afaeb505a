"""Workloads: deterministic Claude traffic in virtual time, for the demo, the benchmarks and the tests.

A :class:`Workload` is a script that yields timed requests (:class:`Call`) and is sent each reply;
:func:`play` drives one with any ``send`` callable and clock. Two sets ship:

* :data:`SUITE` (modules :mod:`~cachewise.workloads.suite` and :mod:`~cachewise.workloads.unseen`):
  traffic shapes, each a factory of ``scale``, that the planner is measured on
  (``benchmarks/planner_workloads.py``, the README's "What the planner buys you" table,
  ``tests/workloads/test_savings.py``);
* :func:`fanout_jobs` (waves of parallel jobs on a shared prefix) and :func:`batch_jobs` (one
  Message Batches body sharing prefixes at two depths), for ``benchmarks/fanout_bench.py``;
* :data:`AFTERNOON` (module :mod:`~cachewise.workloads.afternoon`): the three workloads that
  ``cachewise demo`` replays with and without cachewise.

:func:`run` replays a workload under one caching strategy (:data:`STRATEGIES`, the last of which is
the :class:`Oracle`, a plan with knowledge of the calls to come) on a fresh emulator and returns its
bill; :func:`savings_table` and :func:`markdown` format the comparison. Nothing here imports pandas.
"""

from __future__ import annotations

from .afternoon import AFTERNOON
from .batches import batch_jobs
from .fanout import fanout_jobs, waves
from .oracle import Oracle
from .replay import STRATEGIES, Result, markdown, run, run_suite, savings_table, share, static_markers
from .script import Call, Clock, Script, Workload, play, send_with
from .suite import SUITE, agent_conversation

__all__ = [
    "AFTERNOON",
    "STRATEGIES",
    "SUITE",
    "Call",
    "Clock",
    "Oracle",
    "Result",
    "Script",
    "Workload",
    "agent_conversation",
    "batch_jobs",
    "fanout_jobs",
    "markdown",
    "play",
    "run",
    "run_suite",
    "savings_table",
    "send_with",
    "share",
    "static_markers",
    "waves",
]
