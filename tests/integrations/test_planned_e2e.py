"""With the default planner: breakpoints placed through the wrapper pay off against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

import cachewise
from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger
from cachewise.wrap import tracker_of

from .conftest import API_KEY

SYSTEM = "You answer questions about the attached handbook.\n" + "Section text that never changes. " * 800


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=0) as opened:
        yield opened


def _chat(client: Any, server: EmulatorServer, turns: int) -> None:
    messages: list[dict[str, Any]] = []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: what does section {turn} say?"})
        reply = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=48, system=SYSTEM, messages=messages
        )
        messages.append({"role": "assistant", "content": reply.content})
        server.emulator.advance(40)


def test_planned_chat_costs_less_than_unplanned(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    _chat(cachewise.wrap(client, ledger=ledger, planner=False), emulator, 6)
    unplanned = emulator.emulator.bill_total()
    emulator.emulator.reset()
    wrapped = cachewise.wrap(client, ledger=ledger, planner=True, clock=emulator.emulator.now)
    _chat(wrapped, emulator, 6)
    planned = emulator.emulator.bill_total()
    assert planned < unplanned * Decimal("0.6"), (planned, unplanned)
    ledger.flush()
    rows = [r for r in ledger.calls() if r.planned]
    assert len(rows) == 6
    assert sum(r.usage.cache_read_input_tokens for r in rows) > 0
    assert all(r.breakpoints for r in rows[1:])
    # the caller's messages list was never mutated by the planner
    tracker = tracker_of(wrapped)
    assert tracker.planner is not None


async def test_async_client_plans_too(emulator: EmulatorServer, ledger: Ledger) -> None:
    async with anthropic.AsyncAnthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=0) as base:
        wrapped = cachewise.wrap(base, ledger=ledger, clock=emulator.emulator.now)
        for turn in range(3):
            await wrapped.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=16,
                system=SYSTEM,
                messages=[{"role": "user", "content": f"q{turn}"}],
            )
            emulator.emulator.advance(30)
    ledger.flush()
    rows = ledger.calls()
    assert all(r.planned for r in rows)
    assert sum(r.usage.cache_read_input_tokens for r in rows) > 0
