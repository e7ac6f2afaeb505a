"""What-if on timed requests: each strategy's replay against running it live through the wrapper."""

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
from cachewise.ledger import Ledger
from cachewise.pricing import PriceBook, price
from cachewise.whatif import TimedRequest, apply_strategy, read_requests, replay

T0 = datetime(2026, 4, 1, 9, tzinfo=UTC)
SYSTEM = "You answer questions about the warehouse manual, citing the section you used. " * 130


def _requests() -> list[TimedRequest]:
    """A support chat: six turns 30 s apart, a ten-minute pause, three more turns."""
    out: list[TimedRequest] = []
    turns: list[dict[str, Any]] = []
    at = T0
    for i in range(9):
        turns = [*turns, {"role": "user", "content": f"Question {i}: where do pallets of kind {i} go?"}]
        body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "system": SYSTEM, "messages": turns}
        out.append(TimedRequest(at, body))
        turns = [*turns, {"role": "assistant", "content": f"Aisle {i}, section {i + 2}."}]
        at += timedelta(seconds=600 if i == 5 else 30)
    return out


def _live(requests: list[TimedRequest], strategy: str, tmp_path: Path) -> Decimal:
    """The strategy run for real through cachewise.wrap against an emulator, priced from the ledger."""
    emulator = Emulator(start=requests[0].at)
    http = httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator")
    raw = anthropic.Anthropic(
        api_key="sk-ant-live", base_url="http://emulator", max_retries=0, http_client=http
    )
    book = PriceBook.default()
    with Ledger(tmp_path / f"{strategy}.db") as led:
        client = cachewise.wrap(raw, ledger=led, planner=strategy == "planner", clock=emulator.now)
        for request in requests:
            emulator.advance((request.at - emulator.now()).total_seconds())
            client.messages.create(**{**apply_strategy(strategy, request.body), "max_tokens": 1})
        led.flush()
        rows = led.calls()
    http.close()
    return sum(
        (price(book, replace(r.usage, output_tokens=0), r.model, r.started_at).total for r in rows),
        Decimal(0),
    )


@pytest.mark.parametrize("strategy", ["none", "recorded", "auto", "static", "planner"])
def test_replay_matches_running_the_strategy_live(strategy: str, tmp_path: Path) -> None:
    requests = _requests()
    assert replay(requests, strategy).cost == _live(requests, strategy, tmp_path)


def test_caching_saves_and_the_pause_costs_a_rewrite() -> None:
    requests = _requests()
    none, static, auto, planner = (replay(requests, s) for s in ("none", "static", "auto", "planner"))
    assert none.cache_read_tokens == 0 and none.cache_write_tokens == 0
    assert static.cost < none.cost and auto.cost < static.cost and planner.cost < none.cost
    assert static.cache_write_tokens > 0 and static.cache_read_tokens > 0
    every = cachewise.usage.Usage(input_tokens=none.input_tokens)
    assert none.cost == price(PriceBook.default(), every, "claude-sonnet-4-6", T0).total


def test_the_command_prints_strategies_side_by_side(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "".join(json.dumps({"time": r.at.isoformat(), "body": r.body}) + "\n" for r in _requests())
    )
    assert [r.body for r in read_requests(path)] == [r.body for r in _requests()]
    result = CliRunner().invoke(
        cli, ["whatif", "--requests", str(path), "--strategy", "none,static", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = {row["strategy"]: row for row in json.loads(result.output)}
    assert Decimal(rows["none"]["savings"]) == 0
    assert (
        Decimal(rows["static"]["savings"])
        == Decimal(rows["none"]["cost"]) - Decimal(rows["static"]["cost"])
        > 0
    )


def test_bad_lines_and_strategies_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"time": "2026-04-01T09:00:00", "body": {}}\n')
    result = CliRunner().invoke(cli, ["whatif", "--requests", str(path)])
    assert result.exit_code != 0 and "bad.jsonl:1" in result.output and "timezone" in result.output
    wrong = CliRunner().invoke(cli, ["whatif", "--requests", str(path), "--strategy", "psychic"])
    assert wrong.exit_code == 2 and "psychic" in wrong.output
