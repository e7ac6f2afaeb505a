"""``cachewise.workloads.replay``: a bar with the number of calls on a terminal, nothing otherwise."""

from __future__ import annotations

import pytest

from cachewise.progress import ENV_PROGRESS
from cachewise.workloads.replay import planned_calls, run
from cachewise.workloads.suite import tiny_prompts


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
