"""Sync and async behave alike (in the spirit of llm's test_async_parity.py).

The same session — planned chat turns, a retried 529, a stream, a stream cut short, an error
reply, batch results — runs once through the sync path and once through the async one, against
the emulator reset to the same state and clock. The bodies that reach the server and the rows
the ledger keeps must be the same, for the SDK middleware and for the HTTP transports.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

import cachewise
from cachewise.emulator import EmulatorServer
from cachewise.integrations.tracker import CallTracker
from cachewise.integrations.transport import AsyncCachewiseTransport, CachewiseTransport
from cachewise.ledger import CallRecord, Ledger
from cachewise.planner import CachePlanner

from .conftest import API_KEY
from .recording import AsyncRecording, SyncRecording

SYSTEM = "You answer questions about the attached handbook.\n" + "Section text that never changes. " * 800
MODEL = "claude-sonnet-4-6"


def _row(record: CallRecord) -> tuple[Any, ...]:
    """What a row says, without what differs between two runs by nature (ids, latency)."""
    usage = record.usage
    return (
        record.endpoint,
        record.status,
        record.error_type,
        record.model,
        record.started_at,
        record.planned,
        record.incomplete,
        record.custom_id,
        (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens),
        (usage.cache_creation_input_tokens, usage.ephemeral_5m_input_tokens, usage.ephemeral_1h_input_tokens),
        record.cost.cost_total if record.cost is not None else None,
        tuple((b.position, b.ttl, b.tokens) for b in record.breakpoints),
    )


def _rows(ledger: Ledger) -> list[tuple[Any, ...]]:
    ledger.flush()
    return sorted((_row(r) for r in ledger.calls()), key=repr)


def _turn(turn: int, history: list[dict[str, Any]]) -> dict[str, Any]:
    history.append({"role": "user", "content": f"Question {turn}: what does section {turn} say?"})
    return {"model": MODEL, "max_tokens": 32, "system": SYSTEM, "messages": list(history)}


def run_sync(client: Any, server: EmulatorServer) -> None:
    history: list[dict[str, Any]] = []
    for turn in range(3):
        if turn == 1:
            server.emulator.faults.add("overloaded")
        reply = client.messages.create(**_turn(turn, history))
        history.append({"role": "assistant", "content": reply.content[0].text})
        server.emulator.advance(30)
    with client.messages.stream(**_turn(3, history)) as stream:
        assert stream.get_final_message().content
    server.emulator.faults.add("stream_cut", after_events=4)
    with pytest.raises((httpx2.HTTPError, anthropic.APIError)):
        for _ in client.messages.create(**_turn(4, history), stream=True):
            pass
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(**{**_turn(5, history), "model": "claude-nope-1"})


async def run_async(client: Any, server: EmulatorServer) -> None:
    history: list[dict[str, Any]] = []
    for turn in range(3):
        if turn == 1:
            server.emulator.faults.add("overloaded")
        reply = await client.messages.create(**_turn(turn, history))
        history.append({"role": "assistant", "content": reply.content[0].text})
        server.emulator.advance(30)
    async with client.messages.stream(**_turn(3, history)) as stream:
        assert (await stream.get_final_message()).content
    server.emulator.faults.add("stream_cut", after_events=4)
    with pytest.raises((httpx2.HTTPError, anthropic.APIError)):
        async for _ in await client.messages.create(**_turn(4, history), stream=True):
            pass
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.create(**{**_turn(5, history), "model": "claude-nope-1"})


def _ledger(tmp_path: Path, name: str) -> Ledger:
    return Ledger(tmp_path / f"{name}.sqlite")


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    for client in (anthropic.Anthropic, anthropic.AsyncAnthropic):
        monkeypatch.setattr(client, "_calculate_retry_timeout", lambda *a, **k: 0.0)


def _check(
    sync: tuple[Ledger, SyncRecording], asynchronous: tuple[Ledger, AsyncRecording]
) -> list[tuple[Any, ...]]:
    rows = _rows(sync[0])
    assert len(rows) == 7  # 3 turns (one after a retried 529), a stream, a cut stream, a 404
    assert rows == _rows(asynchronous[0])
    assert any(row[5] and row[11] for row in rows)  # planned rows with breakpoints among them
    # Message ids are random; diagnostics.previous_message_id names one in the same place in both.
    ids = re.compile(rb'"previous_message_id":"[^"]+"')
    assert [ids.sub(b"ID", b) for b in sync[1].bodies()] == [
        ids.sub(b"ID", b) for b in asynchronous[1].bodies()
    ]
    assert len(sync[1].bodies()) == 7  # the retry sent again
    return rows


async def test_the_middleware_behaves_alike_sync_and_async(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_sent = SyncRecording()
    async_sent = AsyncRecording()
    with _ledger(tmp_path, "sync") as sync_ledger, _ledger(tmp_path, "async") as async_ledger:
        emulator.emulator.reset()
        monkeypatch.setenv(
            "CACHEWISE_TOKEN_MEMO", str(tmp_path / "sync-memo.sqlite3")
        )  # each run counts anew
        http = httpx2.Client(transport=sync_sent)
        with anthropic.Anthropic(
            api_key=API_KEY, base_url=emulator.base_url, max_retries=1, http_client=http
        ) as plain:
            run_sync(cachewise.wrap(plain, ledger=sync_ledger, clock=emulator.emulator.now), emulator)
        emulator.emulator.reset()
        monkeypatch.setenv("CACHEWISE_TOKEN_MEMO", str(tmp_path / "async-memo.sqlite3"))
        ahttp = httpx2.AsyncClient(transport=async_sent)
        async with anthropic.AsyncAnthropic(
            api_key=API_KEY, base_url=emulator.base_url, max_retries=1, http_client=ahttp
        ) as aplain:
            wrapped = cachewise.wrap(aplain, ledger=async_ledger, clock=emulator.emulator.now)
            await run_async(wrapped, emulator)
        _check((sync_ledger, sync_sent), (async_ledger, async_sent))


async def test_the_transports_behave_alike_sync_and_async(emulator: EmulatorServer, tmp_path: Path) -> None:
    """Below the SDK: the planner counts nothing (offline bounds), every attempt is one row."""
    sync_sent = SyncRecording()
    async_sent = AsyncRecording()

    def tracker(ledger: Ledger) -> CallTracker:
        now = emulator.emulator.now
        return CallTracker(ledger=ledger, planner=CachePlanner(clock=now), clock=now)

    with _ledger(tmp_path, "sync") as sync_ledger, _ledger(tmp_path, "async") as async_ledger:
        emulator.emulator.reset()
        transport = CachewiseTransport(tracker(sync_ledger), sync_sent)
        http = httpx2.Client(transport=transport)
        with anthropic.Anthropic(
            api_key=API_KEY, base_url=emulator.base_url, max_retries=1, http_client=http
        ) as client:
            run_sync(client, emulator)
        emulator.emulator.reset()
        atransport = AsyncCachewiseTransport(tracker(async_ledger), async_sent)
        ahttp = httpx2.AsyncClient(transport=atransport)
        async with anthropic.AsyncAnthropic(
            api_key=API_KEY, base_url=emulator.base_url, max_retries=1, http_client=ahttp
        ) as aclient:
            await run_async(aclient, emulator)
        _check((sync_ledger, sync_sent), (async_ledger, async_sent))
