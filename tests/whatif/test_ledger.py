"""What-if on the ledger: calls recorded live through cachewise.wrap, replayed from their hashes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from click.testing import CliRunner

import cachewise
from cachewise.cli import cli
from cachewise.emulator import Emulator, EmulatorTransport
from cachewise.ledger import CallRecord, Ledger
from cachewise.planner import CachePlanner
from cachewise.pricing import PriceBook, price
from cachewise.tokens import TokenCounter, TokenMemo
from cachewise.whatif import (
    LEDGER_STRATEGIES,
    TimedRequest,
    apply_strategy,
    marks,
    recorded_calls,
    replay_recorded,
)

T0 = datetime(2026, 4, 1, 9, tzinfo=UTC)
HANDBOOK = "Pallets of kind seven go to aisle four, next to the loading dock on the east side. " * 120
TOOLS = [
    {
        "name": f"lookup_{i}",
        "description": f"Look up section {i} of the warehouse handbook by its number.",
        "input_schema": {"type": "object", "properties": {"section": {"type": "integer"}}},
    }
    for i in range(3)
]


def _requests(hour: bool = False) -> list[TimedRequest]:
    """A chat with caller markers: the system (1h on odd turns, or ``hour``: on every turn) and the last
    user turn (5m), tools on the first half, a ten-minute pause after turn five, and one turn that
    changes the system."""
    out: list[TimedRequest] = []
    history: list[dict[str, Any]] = []
    at = T0
    for i in range(10):
        text = HANDBOOK + (" Today is Tuesday." if i == 7 else "")
        system = [
            {
                "type": "text",
                "text": text,
                "cache_control": {"type": "ephemeral", "ttl": "1h" if i % 2 or hour else "5m"},
            }
        ]
        last = {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": f"Question {i}: where do pallets of kind {i} go?",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        }
        body: dict[str, Any] = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 1,
            "system": system,
            "messages": [*history, last],
        }
        if i < 5:
            body["tools"] = TOOLS
        out.append(TimedRequest(at, body))
        history = [*history, {"role": "user", "content": f"Question {i}: where do pallets of kind {i} go?"}]
        history = [*history, {"role": "assistant", "content": f"Aisle {i}, section {i + 2}."}]
        at += timedelta(seconds=600 if i == 5 else 40)
    return out


def _live(
    requests: list[TimedRequest], strategy: str, path: Path, *, planner: bool = False
) -> list[CallRecord]:
    """Run ``strategy`` on ``requests`` through cachewise.wrap against an emulator; the ledger's rows."""
    emulator = Emulator(start=requests[0].at)
    http = httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator")
    raw = anthropic.Anthropic(
        api_key="sk-ant-live", base_url="http://emulator", max_retries=0, http_client=http
    )
    with Ledger(path) as led:
        # the default planner, with a token memo of its own (not the user's, shared across runs)
        planned = (
            CachePlanner(TokenCounter(raw, memo=TokenMemo(None)), clock=emulator.now, count_budget=None)
            if planner
            else False
        )
        client = cachewise.wrap(raw, ledger=led, planner=planned, clock=emulator.now)
        for request in requests:
            emulator.advance((request.at - emulator.now()).total_seconds())
            client.messages.create(**apply_strategy(strategy, request.body))
        led.flush()
        rows = led.calls()
    http.close()
    return rows


def _billed(rows: list[CallRecord], book: PriceBook) -> Decimal:
    """The rows' input-side cost (input, cache writes and reads) under ``book``."""
    return sum(
        (price(book, replace(r.usage, output_tokens=0), r.model, r.started_at).total for r in rows),
        Decimal(0),
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CallRecord]]:
    path = tmp_path_factory.mktemp("whatif") / "recorded.db"
    return path, _live(_requests(), "recorded", path, planner=True)  # the default wrap: planned


def test_the_ledger_keeps_hashes_and_sizes_not_text(recorded: tuple[Path, list[CallRecord]]) -> None:
    path, rows = recorded
    assert all(r.replay and r.replay["points"] for r in rows)
    first = rows[0].replay or {}
    assert first["tokens"] == rows[0].usage.prompt_tokens
    levels = [p[2] for p in first["points"]]
    assert levels == ["tools"] * 3 + ["system", "messages"]
    assert [p[3] for p in first["points"]] == [None, None, None, "5m", "5m"]
    # the extent the call cached is counted exactly (read + written, at its last marker)
    assert first["points"][-1][1:5] == [rows[0].usage.cache_creation_input_tokens, "messages", "5m", 1]
    # what the planner reads besides the hashes: block type, markable, canonical and text bytes
    assert [p[5:7] for p in first["points"]] == [["tool", 1]] * 3 + [["text", 1]] * 2
    cum_bytes, cum_text = [p[7] for p in first["points"]], [p[8] for p in first["points"]]
    assert cum_bytes == sorted(cum_bytes) and all(
        0 < t <= b for t, b in zip(cum_text, cum_bytes, strict=True)
    )
    # the caller's markers (the system, the last turn), not the ones the planner added
    assert first["caller"] == [[3, "5m"], [4, "5m"]] and first["auto"] is None
    sizes = [p[1] for p in first["points"]]
    assert sizes == sorted(sizes) and sizes[-1] <= first["tokens"]
    stored = path.read_bytes()
    assert b"Pallets of kind" not in stored and b"Question 3" not in stored


def test_replaying_as_recorded_reproduces_the_billed_cost(recorded: tuple[Path, list[CallRecord]]) -> None:
    _, rows = recorded
    book = PriceBook.default()
    outcome = replay_recorded(recorded_calls(rows).calls, "recorded", book)
    assert outcome.calls == len(rows)
    assert outcome.cost == _billed(rows, book)
    stored = [r.cost for r in rows if r.cost is not None]
    assert len(stored) == len(rows)
    assert outcome.cost == sum(
        (c.cost_input + c.cost_cache_write_5m + c.cost_cache_write_1h + c.cost_cache_read for c in stored),
        Decimal(0),
    )
    assert outcome.cache_read_tokens == sum(r.usage.cache_read_input_tokens for r in rows)
    assert outcome.cache_write_tokens == sum(r.usage.cache_creation_input_tokens for r in rows)
    assert outcome.input_tokens == sum(r.usage.input_tokens for r in rows)


def test_as_recorded_under_another_price_table(
    recorded: tuple[Path, list[CallRecord]], tmp_path: Path
) -> None:
    _, rows = recorded
    overlay = tmp_path / "acme.yaml"
    overlay.write_text(
        "version: acme-1\nmodels:\n  - id: claude-sonnet-4-6\n    prices:\n      - from: 2020-01-01\n"
        "        input: 1\n        output: 2\n        cache_write_5m: 3\n        cache_write_1h: 5\n"
        "        cache_read: 0.25\n"
    )
    from cachewise.cli.options import price_book

    book = price_book((overlay,))
    outcome = replay_recorded(recorded_calls(rows).calls, "recorded", book)
    assert outcome.cost == _billed(rows, book) != _billed(rows, PriceBook.default())


@pytest.mark.parametrize("strategy", ["none", "auto", "static", "planner"])
def test_a_strategy_matches_running_it_live(
    strategy: str, recorded: tuple[Path, list[CallRecord]], tmp_path: Path
) -> None:
    _, rows = recorded
    book = PriceBook.default()
    planned = strategy == "planner"
    live = _live(
        _requests(), "recorded" if planned else strategy, tmp_path / f"{strategy}.db", planner=planned
    )
    outcome = replay_recorded(recorded_calls(rows).calls, strategy, book)
    assert outcome.cost == _billed(live, book)
    assert outcome.cache_read_tokens == sum(r.usage.cache_read_input_tokens for r in live)


@pytest.mark.parametrize("strategy", ["recorded", "none", "auto", "static"])
def test_with_every_boundary_counted_each_strategy_matches_live(strategy: str, tmp_path: Path) -> None:
    """A 1h system and a 5m turn split every write: the system boundary is counted on every call."""
    rows = _live(_requests(hour=True), "recorded", tmp_path / "recorded.db", planner=True)
    assert all(p[4] == 1 for r in rows for p in (r.replay or {})["points"] if p[2] == "system")
    live = rows if strategy == "recorded" else _live(_requests(hour=True), strategy, tmp_path / "live.db")
    book = PriceBook.default()
    assert replay_recorded(recorded_calls(rows).calls, strategy, book).cost == _billed(live, book)


def test_none_reads_and_writes_nothing(recorded: tuple[Path, list[CallRecord]]) -> None:
    _, rows = recorded
    none, kept = (replay_recorded(recorded_calls(rows).calls, s) for s in ("none", "recorded"))
    assert none.cache_read_tokens == none.cache_write_tokens == 0
    assert none.input_tokens == sum(r.usage.prompt_tokens for r in rows)
    assert kept.cost < none.cost


def test_marks_per_strategy() -> None:
    points = [["aa", 10, "tools", None, 0], ["bb", 20, "system", "1h", 1], ["cc", 30, "messages", "5m", 1]]
    assert marks("recorded", points) == {1: "1h", 2: "5m"}
    assert marks("none", points) == {}
    assert marks("auto", points) == {2: "5m"}
    assert marks("static", points) == {1: "5m"}
    assert marks("static", [["aa", 10, "tools", None, 0], ["cc", 30, "messages", None, 0]]) == {0: "5m"}
    with pytest.raises(
        ValueError, match=r"strategy 'planner': expected one of recorded, none, auto, static$"
    ):
        marks("planner", points)
    with pytest.raises(ValueError, match=r"strategy 'greedy'"):
        replay_recorded([], "greedy")
    assert set(LEDGER_STRATEGIES) == {"recorded", "none", "auto", "static", "planner"}


def test_calls_without_replay_points_are_left_out(recorded: tuple[Path, list[CallRecord]]) -> None:
    _, rows = recorded
    older = replace(rows[0], request_id="req_old", replay=None)
    found = recorded_calls([older, *rows])
    assert found.without == 1 and len(found.calls) == len(rows)


def test_the_command_replays_the_ledger(recorded: tuple[Path, list[CallRecord]]) -> None:
    path, rows = recorded
    since = (T0 - timedelta(days=1)).date().isoformat()
    argv = ["whatif", "--db", str(path), "--since", since, "--json"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    out = {o["strategy"]: o for o in json.loads(result.output)}
    assert list(out) == list(LEDGER_STRATEGIES)
    assert Decimal(out["recorded"]["cost"]) == _billed(rows, PriceBook.default())
    assert Decimal(out["recorded"]["savings"]) > 0 and out["none"]["hit_ratio"] == 0
    table = CliRunner().invoke(cli, ["whatif", "--db", str(path), "--since", since])
    assert table.exit_code == 0 and "recorded" in table.output and "static" in table.output
    assert Decimal(out["planner"]["cost"]) == _billed(rows, PriceBook.default())  # recorded under it
    refused = CliRunner().invoke(cli, ["whatif", "--db", str(path), "--strategy", "recorded,greedy"])
    assert refused.exit_code == 2 and "greedy" in refused.output
