"""``cachewise.workloads.replay``: a progress bar on a terminal only; a history planned before a workload."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cachewise.progress import ENV_PROGRESS
from cachewise.workloads.replay import planned_calls, run
from cachewise.workloads.suite import sparse_large_context, tiny_prompts


def test_replay_is_quiet_when_not_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV_PROGRESS, raising=False)
    result = run(tiny_prompts(1), "none", limit=3)
    assert result.requests == 3
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_replay_draws_a_bar_with_the_number_of_calls_when_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_PROGRESS, "1")
    workload = tiny_prompts(1)
    total = planned_calls(workload)
    assert total == sum(1 for _ in workload.calls()) and total > 3
    result = run(workload, "planner")
    err = capsys.readouterr().err
    assert f"replaying {workload.name} (planner)" in err
    assert f"{result.requests}/{total}" in err


def test_planned_calls_stops_at_the_limit() -> None:
    assert planned_calls(tiny_prompts(1), limit=2) == 2


def test_a_history_is_planned_a_day_before_and_billed_apart() -> None:
    """``run(..., history=...)``: the same planner plans other traffic first; only the workload is billed."""
    fresh = run(sparse_large_context(1), "planner")
    history = sparse_large_context(1, seed=6)  # another large context, back every 20-40 minutes
    alone = run(history, "planner")
    after = run(sparse_large_context(1), "planner", history=history)
    assert after.requests == fresh.requests == 4
    # The new context's first write is for the hour, which the fresh planner makes only after its
    # first 5m entry lapsed; and the history's own bill (about as large) is not in the result.
    assert after.input_cost < fresh.input_cost * Decimal("0.8")
    assert after.input_cost < alone.input_cost


def test_a_history_is_for_the_planner_only() -> None:
    with pytest.raises(ValueError, match="planner only"):
        run(tiny_prompts(1), "oracle", history=tiny_prompts(1, seed=9))
