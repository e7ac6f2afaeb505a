"""Small versions of the planner's workload suite (``cachewise.workloads``) against the emulator.

The planner must never cost more than no caching on any workload (the issue-13 shapes
included), and must beat Anthropic's automatic caching where it misses structurally. The
oracle, which knows the calls to come, must never cost more than no caching either (nor the learnable bound,
the oracle blind on each family's first call). Costs compared are the
emulator's bill without output (the emulator's reply length depends on the request
bytes, so output differs slightly between strategies; caching cannot change it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from cachewise.workloads import STRATEGIES, SUITE, Workload, markdown, run, share
from cachewise.workloads.suite import document_qa
from cachewise.workloads.unseen import UNSEEN, agent_sessions, huge_contexts

STRUCTURAL_MISSES = {"document Q&A", "agent loop", "few-shot", "sparse 20–40 min", "many tenants"}


_LEARNING_COST = pytest.mark.xfail(
    strict=True,
    reason=(
        "three visits per 150k-230k context, mostly more than 5 minutes apart: the first write is a 5m one "
        "(no history says the context comes back later), it lapses, and the 1h rewrite is read once; "
        "the learning costs more than it saves (docs/planner.md, known gaps)"
    ),
)


def _at_small_scale(make: Callable[[int], Workload]) -> Any:
    marks = [_LEARNING_COST] if make is huge_contexts else []
    return pytest.param(make, id=make.__name__, marks=marks)


@pytest.mark.parametrize("make", [_at_small_scale(m) for m in SUITE])
def test_planner_never_costs_more_than_no_caching(make: Callable[[int], Workload]) -> None:
    workload = make(1)
    results = {s: run(workload, s, limit=60) for s in STRATEGIES}
    planner, none, auto = results["planner"], results["none"], results["automatic"]
    assert planner.input_cost <= none.input_cost, markdown([list(results.values())])
    assert results["oracle"].input_cost <= none.input_cost, markdown([list(results.values())])
    assert results["learnable"].input_cost <= none.input_cost, markdown([list(results.values())])
    if workload.name in STRUCTURAL_MISSES:
        assert planner.input_cost < auto.input_cost, markdown([list(results.values())])
    assert planner.count_calls <= 3 * planner.requests


def test_large_contexts_pay_for_their_learning_from_six_visits() -> None:
    workload = huge_contexts(2)
    planner, none = run(workload, "planner"), run(workload, "none")
    assert planner.input_cost < none.input_cost * 7 / 10


def test_agent_sessions_with_pauses_beat_the_static_placement() -> None:
    # A pause outlives every 5m entry since the deepest 1h one; the planner writes the tail at 1h
    # once the family's pauses are seen (it cost 0.949 against static's 0.936 before it did).
    workload = agent_sessions(1)
    planner, static = run(workload, "planner"), run(workload, "static")
    assert planner.input_cost < static.input_cost * 95 / 100


def test_the_same_over_real_http() -> None:
    workload = document_qa(1)
    planner = run(workload, "planner", server=True, limit=4)
    none = run(workload, "none", server=True, limit=4)
    assert planner.input_cost < none.input_cost


def test_every_issue_13_shape_is_in_the_suite() -> None:
    assert set(UNSEEN) <= set(SUITE)
    assert len({make(1).name for make in SUITE}) == len(SUITE)


def test_the_share_of_the_bound_is_none_against_the_oracle_over_none_against_planner() -> None:
    workload = document_qa(1)
    results = [run(workload, s, limit=8) for s in STRATEGIES]
    by = {r.strategy: r.input_cost for r in results}
    assert by["oracle"] < by["none"]
    assert share(results) == (by["none"] - by["planner"]) / (by["none"] - by["oracle"])
    assert (
        share([r if r.strategy != "oracle" else replace(r, input_cost=by["none"]) for r in results]) is None
    )
