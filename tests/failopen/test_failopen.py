"""One fail-open policy (cachewise.failopen) for every part on the request path, with one override."""

from __future__ import annotations

from typing import Any

import pytest

from cachewise.failopen import fail_open, guarded, internal_failures, raising, reset_failures
from cachewise.planner import CachePlanner

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 8,
    "system": "Manual. " * 600,
    "messages": [{"role": "user", "content": "hi"}],
}


def _broken_planner(monkeypatch: pytest.MonkeyPatch) -> CachePlanner:
    planner = CachePlanner()
    monkeypatch.setattr(planner, "_steps", lambda *a, **k: 1 / 0)
    return planner


def test_the_builtin_planner_obeys_the_one_override(monkeypatch: pytest.MonkeyPatch) -> None:
    planner = _broken_planner(monkeypatch)
    reset_failures()
    with raising(False):  # under pytest, yet swallowed: the planner has no check of its own any more
        plan = planner.plan(REQUEST)
    assert plan.breakpoints == ()
    assert "ZeroDivisionError" in plan.notes[0]
    assert internal_failures()["planner"] == 1
    with pytest.raises(ZeroDivisionError):  # and by default, under pytest, our bugs fail our tests
        planner.plan(REQUEST)


async def test_the_override_holds_for_aplan_too(monkeypatch: pytest.MonkeyPatch) -> None:
    planner = _broken_planner(monkeypatch)
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    with raising(True), pytest.raises(ZeroDivisionError):  # forced on, even outside a test
        await planner.aplan(REQUEST)


def test_fail_open_is_a_context_manager_and_a_decorator() -> None:
    reset_failures()
    calls: list[str] = []

    @fail_open("decorated")
    def broken() -> None:
        calls.append("ran")
        raise ValueError("bug")

    with raising(False):
        broken()
        broken()
        with fail_open("block"):
            raise KeyError("bug")
        assert guarded("valued", lambda: 1 // 0, 7) == 7
    assert calls == ["ran", "ran"]
    assert internal_failures() == {"decorated": 2, "block": 1, "valued": 1}
    with pytest.raises(ValueError, match="bug"):
        broken()
