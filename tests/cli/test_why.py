"""``cachewise why``: one call's miss explained, and the causes ranked by money."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from click.testing import CliRunner

import cachewise
from cachewise.cli import cli
from cachewise.diagnose import missed_cost
from cachewise.emulator import Emulator, EmulatorTransport
from cachewise.ledger import CallRecord, Ledger
from cachewise.pricing import PriceBook

LONG = "The assistant reads the whole handbook before it answers any question at all. " * 120


def _traffic(path: Path) -> list[CallRecord]:
    """A cold start, a read, a system change, an expiry: four calls on a fresh emulator."""
    emulator = Emulator()
    raw = anthropic.Anthropic(
        api_key="sk-ant-why", base_url="http://emulator", max_retries=0,
        http_client=httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator"),
    )  # fmt: skip
    with Ledger(path) as led:
        client = cachewise.wrap(raw, ledger=led, planner=False, clock=emulator.now)

        def ask(system: str) -> Any:
            block = {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
            content = [{"role": "user", "content": "Hello?"}]
            return client.messages.create(
                model="claude-sonnet-4-6", max_tokens=8, system=[block], messages=content
            )

        ask(LONG)
        emulator.advance(5)
        ask(LONG)
        emulator.advance(5)
        ask(LONG + " Be kind.")
        emulator.advance(400)
        ask(LONG + " Be kind.")
        led.flush()
        return sorted(led.calls(), key=lambda r: r.started_at)


@pytest.fixture
def traffic(tmp_path: Path) -> tuple[Path, list[CallRecord]]:
    path = tmp_path / "why.sqlite"
    return path, _traffic(path)


def test_why_names_the_reason_position_hashes_tokens_and_cost(traffic: tuple[Path, list[CallRecord]]) -> None:
    path, rows = traffic
    changed = rows[2]
    result = CliRunner().invoke(cli, ["why", changed.request_id, "--db", str(path), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["miss_reason"] == "prefix_changed" and shown["api_miss_reason"] == "system_changed"
    assert (shown["level"], shown["position"]) == ("system", 0)
    assert shown["hash_before"] == changed.miss_detail["hash_before"]  # type: ignore[index]
    assert shown["hash_before"] != shown["hash_now"]
    assert shown["tokens"] == rows[0].usage.cache_creation_input_tokens
    expected = missed_cost(
        PriceBook.default(), changed.usage, changed.model, changed.started_at, shown["tokens"]
    )
    assert Decimal(shown["cost"]) == expected > 0
    text = CliRunner().invoke(cli, ["why", changed.request_id, "--db", str(path)]).output
    assert "first differs: system position 0" in text and "API says:      system_changed" in text


def test_why_on_a_hit_and_on_an_unknown_id(traffic: tuple[Path, list[CallRecord]]) -> None:
    path, rows = traffic
    hit = CliRunner().invoke(cli, ["why", rows[1].request_id, "--db", str(path)])
    assert hit.exit_code == 0 and "no miss recorded" in hit.output
    missing = CliRunner().invoke(cli, ["why", "req_nope", "--db", str(path)])
    assert missing.exit_code != 0 and "'req_nope'" in missing.output


def test_causes_are_ranked_by_money(traffic: tuple[Path, list[CallRecord]]) -> None:
    path, _ = traffic
    result = CliRunner().invoke(cli, ["why", "--causes", "--db", str(path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    reasons = {r["reason"] for r in rows}
    assert {"prefix_changed", "expired", "no_previous"} <= reasons
    costs = [Decimal(r["cost"]) for r in rows]
    assert costs == sorted(costs, reverse=True) and costs[-1] == 0


def test_a_request_id_or_causes_is_required(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["why", "--db", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 2 and "REQUEST_ID" in result.output
