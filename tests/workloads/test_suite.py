"""The shipped workloads: deterministic, written as a user writes them, and the README's table."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cachewise.workloads import AFTERNOON, STRATEGIES, SUITE, Call, Workload, play, run_suite

README = Path(__file__).resolve().parents[2] / "README.md"


def _dump(calls: list[Call]) -> list[tuple[float, str]]:
    return [(c.at, json.dumps(c.request, sort_keys=True)) for c in calls]


@pytest.mark.parametrize("make", SUITE, ids=lambda m: m.__name__)
def test_a_suite_workload_is_the_same_every_time(make: Callable[..., Workload]) -> None:
    first, again = list(make(1).calls()), list(make(1).calls())
    assert first and _dump(first) == _dump(again)
    assert all(c.at >= 0 for c in first)
    assert _dump(list(make(1, seed=99).calls())) != _dump(first)
    assert len(list(make(2).calls())) > len(first)


def _afternoon_requests(workload: Workload) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def send(request: dict[str, Any]) -> Any:
        sent.append(json.loads(json.dumps(request)))  # as sent, before the script appends to it
        return SimpleNamespace(content=[{"type": "text", "text": f"answer {len(sent)}"}])

    play(workload, send)
    return sent


def _has_cache_control(value: Any) -> bool:
    if isinstance(value, dict):
        return "cache_control" in value or any(_has_cache_control(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_cache_control(v) for v in value)
    return False


def test_no_request_carries_cache_control() -> None:
    for make in SUITE:
        assert not any(_has_cache_control(c.request) for c in make(1).calls()), make.__name__
    for workload in AFTERNOON:
        assert not any(_has_cache_control(r) for r in _afternoon_requests(workload)), workload.name


def test_the_support_chat_carries_the_model_s_replies_forward() -> None:
    support = next(w for w in AFTERNOON if w.name == "support_chat")
    sent = _afternoon_requests(support)
    assert len(sent) == 20
    last = sent[-1]["messages"]  # user-3's fifth turn: four earlier exchanges, then the question
    assert [m["role"] for m in last] == ["user", "assistant"] * 4 + ["user"]
    assert last[1]["content"] == [{"type": "text", "text": "answer 4"}]


@pytest.mark.parametrize(
    ("name", "calls", "seconds"), [("support_chat", 20, 700), ("document_qa", 8, 720), ("agent_loop", 5, 100)]
)
def test_the_afternoon_calls_and_their_spacing(name: str, calls: int, seconds: float) -> None:
    workload = next(w for w in AFTERNOON if w.name == name)
    sent: list[float] = []
    script = workload.script()
    try:
        call = next(script)
        while True:
            sent.append(call.at)
            call = script.send(SimpleNamespace(content="ok"))
    except StopIteration as stop:
        end = stop.value
    assert len(sent) == calls
    assert end == seconds
    gaps = {b - a for a, b in itertools.pairwise(sent)}
    assert gaps == {seconds / calls}


def _readme_rows() -> list[list[str]]:
    section = (
        README.read_text(encoding="utf-8").split("## What the planner buys you", 1)[1].split("\n## ", 1)[0]
    )
    lines = [
        line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| workload")
    ]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def _pct(planner: Any, other: Any) -> str:
    return f"{(planner - other) / other:.0%}".replace("-", "−")


@pytest.mark.slow
def test_the_readme_savings_table_is_the_suite_at_scale_3() -> None:
    readme = _readme_rows()
    assert len(readme) == len(SUITE)
    for row, results in zip(readme, run_suite(3), strict=True):
        side = {r.strategy: r.input_cost for r in results}
        figures = [f"{side[s]:.4f}" for s in STRATEGIES]
        calls = str(results[0].requests)
        expected = [
            calls,
            *figures,
            _pct(side["planner"], side["none"]),
            _pct(side["planner"], side["automatic"]),
        ]
        assert row[1:] == expected, (row[0], results[0].workload)
