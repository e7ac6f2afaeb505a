"""Counting never stalls the user's request: no retries, no retry-after waits, a time budget per request.

Against the emulator's fault injection on ``count_tokens`` (429 with ``retry-after``, 529, a
response held back), through ``cachewise.wrap`` with the user's client configured to retry:
the real request still goes out, after one count attempt, and planned with what is known.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import anyio
import pytest

import cachewise
from cachewise.emulator import EmulatorServer
from cachewise.errors import TokenCountError
from cachewise.ledger import Ledger
from cachewise.planner import DEFAULT_COUNT_BUDGET, CachePlanner
from cachewise.prompt import Prompt
from cachewise.tokens import AsyncTokenCounter, TokenCounter, TokenMemo
from tests.strategies import words

API_KEY = "sk-ant-planner-budget"
MODEL = "claude-sonnet-4-6"


def body(seed: int) -> dict[str, Any]:
    """About 2,600 tokens of system prompt: its bounds straddle the minimum, so the planner counts."""
    return {
        "model": MODEL,
        "max_tokens": 16,
        "system": words(900, seed),
        "messages": [{"role": "user", "content": f"question {seed}"}],
    }


@pytest.fixture(autouse=True)
def _own_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default planner's memo: one per test, so every test's counts really go out.
    monkeypatch.setenv("CACHEWISE_TOKEN_MEMO", str(tmp_path / "tokens.sqlite3"))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


@pytest.fixture
def client(claude_emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    # The user's client retries (and would honour retry-after); counting must not.
    with anthropic.Anthropic(api_key=API_KEY, base_url=claude_emulator.base_url, max_retries=2) as opened:
        yield opened


def _left(server: EmulatorServer) -> int:
    return sum(f.count for f in server.emulator.faults.pending())


def _billed(server: EmulatorServer, ledger: Ledger) -> None:
    (billed,) = server.emulator.bill()
    ledger.flush()
    (row,) = ledger.calls()
    assert row.status == "ok" and row.request_id == billed["request_id"]


def test_the_default_budget_is_two_seconds() -> None:
    assert DEFAULT_COUNT_BUDGET == 2.0
    assert CachePlanner().count_budget == 2.0
    assert CachePlanner(count_budget=None).count_budget is None
    with pytest.raises(ValueError, match="count_budget"):
        CachePlanner(count_budget=0)


@pytest.mark.parametrize("kind", ["rate_limit", "overloaded"])
def test_a_refused_count_is_not_retried_and_the_request_goes_out(
    kind: str, claude_emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    claude_emulator.emulator.faults.add(kind, count=10, endpoint="count_tokens", retry_after=20)
    wrapped = cachewise.wrap(client, ledger=ledger)
    message = wrapped.messages.create(**body(1))
    assert message.content
    assert _left(claude_emulator) == 9  # one count attempt: no retry, no retry-after wait
    _billed(claude_emulator, ledger)
    (row,) = ledger.calls()
    # Planned with what was known: nothing that needed the count (the system prompt is ambiguous).
    assert row.planned and not row.breakpoints
    # The next request: a 429's retry-after (20 s) is honoured by not counting; a 529 says none.
    assert wrapped.messages.create(**body(11)).content
    assert _left(claude_emulator) == (9 if kind == "rate_limit" else 8)


async def test_async_a_refused_count_is_not_retried_and_the_request_goes_out(
    claude_emulator: EmulatorServer, ledger: Ledger
) -> None:
    claude_emulator.emulator.faults.add("rate_limit", count=10, endpoint="count_tokens", retry_after=2)
    async with anthropic.AsyncAnthropic(
        api_key=API_KEY, base_url=claude_emulator.base_url, max_retries=2
    ) as base:
        wrapped = cachewise.wrap(base, ledger=ledger)
        message = await wrapped.messages.create(**body(2))
    assert message.content
    assert _left(claude_emulator) == 9
    _billed(claude_emulator, ledger)


@contextmanager
def _held(server: EmulatorServer) -> Iterator[threading.Event]:
    """Hold every count_tokens response until the test is done (or 30 s, should it hang)."""
    gate = server.emulator.faults.hold(count=5, endpoint="count_tokens")
    timer = threading.Timer(30, gate.set)
    timer.daemon = True
    timer.start()
    try:
        yield gate
    finally:
        gate.set()
        timer.cancel()


def test_a_count_not_answered_within_the_budget_means_no_breakpoint_that_needs_it(
    claude_emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    with _held(claude_emulator) as gate:
        planner = CachePlanner(TokenCounter(client, memo=TokenMemo(None)), count_budget=1.0)
        wrapped = cachewise.wrap(client, ledger=ledger, planner=planner)
        message = wrapped.messages.create(**body(3))
        # The request went out and was answered while the count was still held.
        assert message.content and not gate.is_set()
    _billed(claude_emulator, ledger)
    (row,) = ledger.calls()
    assert row.planned and not row.breakpoints
    assert planner.counter is not None and planner.counter.failures >= 1


async def test_async_a_count_not_answered_within_the_budget_means_no_breakpoint_that_needs_it(
    claude_emulator: EmulatorServer, ledger: Ledger
) -> None:
    with _held(claude_emulator) as gate:
        async with anthropic.AsyncAnthropic(
            api_key=API_KEY, base_url=claude_emulator.base_url, max_retries=2
        ) as base:
            planner = CachePlanner(AsyncTokenCounter(base, memo=TokenMemo(None)), count_budget=1.0)
            wrapped = cachewise.wrap(base, ledger=ledger, planner=planner)
            message = await wrapped.messages.create(**body(4))
        assert message.content and not gate.is_set()
    _billed(claude_emulator, ledger)


async def test_async_a_slow_count_function_is_cancelled_at_the_deadline() -> None:
    async def slow(body: dict[str, Any]) -> int:
        await anyio.sleep(30)
        return 1

    counter = AsyncTokenCounter(slow, memo=TokenMemo(None))
    planner = CachePlanner(counter, count_budget=0.2)
    plan = await planner.aplan(body(5))
    assert not plan.added
    assert any("count budget" in r.reason for r in plan.rejected)


class _Ticking:
    """Stands in for the ``time`` module: monotonic time moves only when a count is made."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_once_the_budget_is_spent_no_further_count_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Ticking()
    sent: list[dict[str, Any]] = []

    def count(body: dict[str, Any]) -> int:  # a sync callable cannot be interrupted: it takes 2.5 s
        sent.append(body)
        fake.now += 2.5
        return 1500

    monkeypatch.setattr("cachewise.tokens.time", fake)
    monkeypatch.setattr("cachewise.planner.core.time", fake)
    counter = TokenCounter(count, memo=TokenMemo(None))
    request = body(6)
    with pytest.raises(TokenCountError, match="budget"):
        counter.count(Prompt(request), 0, deadline=fake.now - 1)
    assert sent == []
    plan = CachePlanner(counter, count_budget=2.0).plan(request)
    # The tail is counted first (2.5 s); the count of the placed breakpoint (to learn the
    # uncertain minimum of this model) would start after the budget: not made.
    assert len(sent) == 1
    assert any("count budget" in note for note in plan.notes)
    assert plan.added  # planned with what was known
    unlimited = CachePlanner(TokenCounter(count, memo=TokenMemo(None)), count_budget=None)
    sent.clear()
    unlimited.plan(request)
    assert len(sent) == 3  # the tail, the end of system and its filler baseline
