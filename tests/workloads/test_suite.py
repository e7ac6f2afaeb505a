"""The shipped workloads: deterministic, written as a user writes them, and the README's table."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cachewise.workloads import AFTERNOON, SUITE, Call, Workload, play, run_suite, savings_table
from cachewise.workloads.unseen import caller_markers

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


def test_no_request_carries_cache_control_but_the_callers_own_markers() -> None:
    for make in SUITE:
        marked = any(_has_cache_control(c.request) for c in make(1).calls())
        assert marked == (make is caller_markers), make.__name__
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


def _readme_table() -> list[str]:
    section = (
        README.read_text(encoding="utf-8").split("## What the planner buys you", 1)[1].split("\n## ", 1)[0]
    )
    return [line for line in section.splitlines() if line.startswith("|")]


@pytest.mark.slow
def test_the_readme_savings_table_is_the_suite_at_scale_3() -> None:
    readme = _readme_table()
    assert len(readme) == len(SUITE) + 2
    assert readme == savings_table(run_suite(3)).splitlines()
