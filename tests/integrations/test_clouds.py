"""Wrapped Bedrock and Vertex AI clients, sync, async and streamed, over real sockets against the emulator.

Every call's ledger row must carry the emulator's bill to the last decimal (the bill prices the
same usage independently, with the regional premium when the endpoint is not the global one),
the platform on its rates, and the flag that the TTL split was missing.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import anthropic
import pytest

import cachewise
from cachewise.emulator import EmulatorServer
from cachewise.ledger import CallRecord, Ledger

SYSTEM = "Stable instructions for every call, long enough to be cached on its own. " * 400
HAIKU_BEDROCK = "anthropic.claude-haiku-4-5-20251001-v1:0"
MILLION = Decimal(1_000_000)
_OPEN: list[Any] = []  # sync clients a test made, closed after it (an unclosed socket fails the run)


@pytest.fixture(autouse=True)
def _close_clients() -> Any:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _bedrock(server: EmulatorServer, *, asynchronous: bool = False) -> Any:
    cls = anthropic.AsyncAnthropicBedrock if asynchronous else anthropic.AnthropicBedrock
    client = cls(
        aws_access_key="AKIDCACHEWISETEST",
        aws_secret_key="not-a-secret",
        aws_region="us-east-1",
        base_url=server.base_url,
        max_retries=0,
    )
    if not asynchronous:
        _OPEN.append(client)
    return client


def _vertex(server: EmulatorServer, location: str, *, asynchronous: bool = False) -> Any:
    cls = anthropic.AsyncAnthropicVertex if asynchronous else anthropic.AnthropicVertex
    client = cls(
        region=location,
        project_id="cachewise-test",
        access_token="ya29.fake-token",
        base_url=server.base_url + "/v1",
        max_retries=0,
    )
    if not asynchronous:
        _OPEN.append(client)
    return client


def _body(model: str, turn: int) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 32,
        "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": f"question {turn}"}],
    }


def _expected(row: CallRecord, premium: Decimal) -> Decimal:
    """Haiku 4.5's published rates (input 1, 5m write 1.25, read 0.10, output 5 $/MTok) times the premium."""
    u = row.usage
    base = (
        Decimal(u.input_tokens) * Decimal(1)
        + Decimal(u.cache_creation_input_tokens) * Decimal("1.25")
        + Decimal(u.cache_read_input_tokens) * Decimal("0.10")
        + Decimal(u.output_tokens) * Decimal(5)
    )
    return base * premium / MILLION


def _check(server: EmulatorServer, ledger: Ledger, platform: str, premium: Decimal) -> list[CallRecord]:
    ledger.flush()
    rows = ledger.calls()
    bill = {r["request_id"]: r for r in server.emulator.bill()}
    assert len(rows) == len(bill) == 2
    for row in rows:
        billed = bill[row.request_id]
        assert row.cost is not None, row.cost_error
        assert row.cost.cost_total == Decimal(billed["cost_total"])
        assert row.cost.cost_total == _expected(row, premium)
        assert row.rates is not None
        assert row.rates["platform"] == platform
        assert row.provider == platform
        assert row.rates["regional"] is (premium != 1)
        assert billed["regional"] is (premium != 1)
        # the platforms' usage has no 5m/1h split: a row that wrote is flagged, and says how it was priced
        wrote = row.usage.cache_creation_input_tokens > 0
        assert row.usage.ttl_split_missing is wrote
        assert any("billed as 5m writes" in note for note in row.rates["uncertain"]) is wrote
    first, second = rows
    assert first.usage.cache_creation_input_tokens > 4096
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    return rows


@pytest.mark.parametrize(
    ("model", "premium"),
    [
        (f"us.{HAIKU_BEDROCK}", Decimal("1.1")),
        (HAIKU_BEDROCK, Decimal("1.1")),
        (f"global.{HAIKU_BEDROCK}", Decimal(1)),
    ],
)
def test_bedrock_sync_json_and_event_stream(
    emulator: EmulatorServer, ledger: Ledger, model: str, premium: Decimal
) -> None:
    wrapped = cachewise.wrap(_bedrock(emulator), ledger=ledger, planner=False, clock=emulator.emulator.now)
    reply = wrapped.messages.create(**_body(model, 0))
    assert reply.content
    emulator.emulator.advance(5)
    with wrapped.messages.stream(**_body(model, 1)) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens > 0
    rows = _check(emulator, ledger, "bedrock", premium)
    assert [r.endpoint for r in rows] == ["messages", "stream"]
    assert all(r.model == "claude-haiku-4-5-20251001" for r in rows)


def test_bedrock_async_json_and_event_stream(emulator: EmulatorServer, ledger: Ledger) -> None:
    model = f"eu.{HAIKU_BEDROCK}"

    async def run() -> None:
        client = _bedrock(emulator, asynchronous=True)
        wrapped = cachewise.wrap(client, ledger=ledger, planner=False, clock=emulator.emulator.now)
        await wrapped.messages.create(**_body(model, 0))
        emulator.emulator.advance(5)
        async with wrapped.messages.stream(**_body(model, 1)) as stream:
            await stream.get_final_message()
        await client.close()

    asyncio.run(run())
    rows = _check(emulator, ledger, "bedrock", Decimal("1.1"))
    assert [r.endpoint for r in rows] == ["messages", "stream"]


@pytest.mark.parametrize(("location", "premium"), [("us-east5", Decimal("1.1")), ("global", Decimal(1))])
def test_vertex_sync_raw_predict_and_stream(
    emulator: EmulatorServer, ledger: Ledger, location: str, premium: Decimal
) -> None:
    wrapped = cachewise.wrap(
        _vertex(emulator, location), ledger=ledger, planner=False, clock=emulator.emulator.now
    )
    wrapped.messages.create(**_body("claude-haiku-4-5@20251001", 0))
    emulator.emulator.advance(5)
    with wrapped.messages.stream(**_body("claude-haiku-4-5@20251001", 1)) as stream:
        stream.get_final_message()
    rows = _check(emulator, ledger, "vertex", premium)
    assert [r.endpoint for r in rows] == ["messages", "stream"]


def test_vertex_async_raw_predict_and_stream(emulator: EmulatorServer, ledger: Ledger) -> None:
    async def run() -> None:
        client = _vertex(emulator, "europe-west1", asynchronous=True)
        wrapped = cachewise.wrap(client, ledger=ledger, planner=False, clock=emulator.emulator.now)
        await wrapped.messages.create(**_body("claude-haiku-4-5@20251001", 0))
        emulator.emulator.advance(5)
        async with wrapped.messages.stream(**_body("claude-haiku-4-5@20251001", 1)) as stream:
            await stream.get_final_message()
        await client.close()

    asyncio.run(run())
    _check(emulator, ledger, "vertex", Decimal("1.1"))


def test_a_one_hour_write_on_a_platform_is_priced_as_5m_and_flagged(
    emulator: EmulatorServer, ledger: Ledger
) -> None:
    body = _body(f"global.{HAIKU_BEDROCK}", 0)
    body["system"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    wrapped = cachewise.wrap(_bedrock(emulator), ledger=ledger, planner=False, clock=emulator.emulator.now)
    wrapped.messages.create(**body)
    ledger.flush()
    (row,) = ledger.calls()
    (billed,) = emulator.emulator.bill()
    assert row.cost is not None
    assert row.usage.ttl_split_missing
    written = Decimal(row.usage.cache_creation_input_tokens)
    # the emulator knows the write was 1h ($2/MTok); the reply does not say so, so the row bills 5m ($1.25)
    assert Decimal(billed["cost_total"]) - row.cost.cost_total == written * Decimal("0.75") / MILLION


def test_the_default_planner_does_not_collapse_runs_on_the_platforms(emulator: EmulatorServer) -> None:
    from cachewise.wrap import tracker_of

    bedrock = cachewise.wrap(_bedrock(emulator), ledger=Ledger("sqlite://"))
    vertex = cachewise.wrap(_vertex(emulator, "global"), ledger=Ledger("sqlite://"))
    plain = anthropic.Anthropic(api_key="k", base_url=emulator.base_url)
    _OPEN.append(plain)
    first = cachewise.wrap(plain, ledger=Ledger("sqlite://"))
    assert getattr(tracker_of(bedrock).planner, "collapse_runs", None) is False
    assert getattr(tracker_of(vertex).planner, "collapse_runs", None) is False
    assert getattr(tracker_of(first).planner, "collapse_runs", None) is True
    assert (tracker_of(bedrock).platform, tracker_of(bedrock).location) == ("bedrock", "us-east-1")
    assert (tracker_of(vertex).platform, tracker_of(vertex).location) == ("vertex", "global")


def test_a_refused_platform_call_is_an_error_row_with_its_provider(
    emulator: EmulatorServer, ledger: Ledger
) -> None:
    wrapped = cachewise.wrap(
        _vertex(emulator, "global"), ledger=ledger, planner=False, clock=emulator.emulator.now
    )
    with pytest.raises(anthropic.NotFoundError):
        wrapped.messages.create(**_body("claude-nonexistent@20990101", 0))
    ledger.flush()
    (row,) = ledger.calls()
    assert (row.status, row.provider, row.cost) == ("error", "vertex", None)
    assert emulator.emulator.bill() == []


def _unmarked(model: str, turn: int) -> dict[str, Any]:
    body = _body(model, turn)
    body["system"] = SYSTEM
    return body


def test_the_default_planner_caches_on_vertex_counting_through_count_tokens(
    emulator: EmulatorServer, ledger: Ledger
) -> None:
    wrapped = cachewise.wrap(_vertex(emulator, "us-east5"), ledger=ledger, clock=emulator.emulator.now)
    for turn in range(2):
        wrapped.messages.create(**_unmarked("claude-haiku-4-5@20251001", turn))
        emulator.emulator.advance(5)
    ledger.flush()
    first, second = ledger.calls()
    assert first.planned and first.breakpoints
    # the system prompt the first call wrote is read back (the planner also marked the changing turn)
    assert 4096 < second.usage.cache_read_input_tokens <= first.usage.cache_creation_input_tokens
    bill = {r["request_id"]: Decimal(r["cost_total"]) for r in emulator.emulator.bill()}
    assert all(r.cost is not None and r.cost.cost_total == bill[r.request_id] for r in (first, second))


def test_the_default_planner_on_bedrock_without_count_tokens_never_fails_the_call(
    emulator: EmulatorServer, ledger: Ledger
) -> None:
    wrapped = cachewise.wrap(_bedrock(emulator), ledger=ledger, clock=emulator.emulator.now)
    for turn in range(2):
        reply = wrapped.messages.create(**_unmarked(f"global.{HAIKU_BEDROCK}", turn))
        assert reply.content
        emulator.emulator.advance(5)
    ledger.flush()
    rows = ledger.calls()
    assert [r.status for r in rows] == ["ok", "ok"]
    bill = {r["request_id"]: Decimal(r["cost_total"]) for r in emulator.emulator.bill()}
    assert all(r.cost is not None and r.cost.cost_total == bill[r.request_id] for r in rows)
    # the SDK refuses count_tokens on Bedrock: only breakpoints the offline bound justifies
    for point in rows[0].breakpoints:
        assert point.tokens is None or point.tokens >= 4096
