"""Miss causes ranked by money, summed in SQL: the same figures in ``why --causes`` and every report."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
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
from cachewise.diagnose import saving, split
from cachewise.emulator import Emulator, EmulatorTransport
from cachewise.ledger import CallRecord, Ledger
from cachewise.ledger.query import Filter
from cachewise.pricing import PriceBook
from cachewise.reports.misses import ledger_miss_causes, miss_causes, miss_of
from cachewise.usage import Usage
from tests.ledger.conftest import pg_schema

LONG = "Each answer cites the handbook section it relies on, by its number and title. " * 150
BOOK = PriceBook.default()


def _send(path: Path) -> list[CallRecord]:
    """Cold starts, reads, a system change, a changed turn, an expiry, another model, no marker."""
    emulator = Emulator()
    raw = anthropic.Anthropic(
        api_key="sk-ant-causes", base_url="http://emulator", max_retries=0,
        http_client=httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator"),
    )  # fmt: skip
    with Ledger(path) as led:
        client = cachewise.wrap(raw, ledger=led, planner=False, clock=emulator.now)

        def ask(
            system: str, turn: str = "Hello?", model: str = "claude-sonnet-4-6", mark: bool = True
        ) -> None:
            block: dict[str, Any] = {"type": "text", "text": system}
            if mark:
                block["cache_control"] = {"type": "ephemeral"}
            history = [
                {"role": "user", "content": turn},
                {"role": "assistant", "content": "Noted."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "And?", "cache_control": {"type": "ephemeral"}}],
                },
            ]
            client.messages.create(model=model, max_tokens=8, system=[block], messages=history)

        for gap, args in [
            (0, (LONG,)),
            (5, (LONG,)),
            (5, (LONG + " Be kind.",)),
            (5, (LONG + " Be kind.", "Hi there?")),
            (400, (LONG + " Be kind.", "Hi there?")),
            (5, (LONG + " Be kind.", "Hi there?", "claude-haiku-4-5")),
            (5, (LONG + " Be brief.",)),
            (5, (LONG + " Be brief.",)),
        ]:
            emulator.advance(gap)
            ask(*args)
        led.flush()
        return sorted(led.calls(), key=lambda r: r.started_at)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CallRecord]]:
    path = tmp_path_factory.mktemp("causes") / "ledger.db"
    return path, _send(path)


def _by_hand(rows: list[CallRecord]) -> dict[tuple[str, str | None], tuple[int, int, Decimal]]:
    """Each cause's calls, tokens and money, call by call (cachewise why's own figures)."""
    out: dict[tuple[str, str | None], tuple[int, int, Decimal]] = {}
    for r in rows:
        if r.miss_reason is None and r.api_miss_reason is None:
            continue
        key = (
            r.miss_reason or f"api:{r.api_miss_reason}",
            (r.miss_detail or {}).get("level") if r.miss_reason == "prefix_changed" else None,
        )
        tokens, cost = miss_of(r, BOOK)
        n, t, c = out.get(key, (0, 0, Decimal(0)))
        assert cost is not None
        out[key] = (n + 1, t + tokens, c + cost)
    return out


def test_the_sql_ranking_is_the_sum_of_each_calls_miss(traffic: tuple[Path, list[CallRecord]]) -> None:
    path, rows = traffic
    with Ledger.open_existing(str(path)) as led:
        ranked = ledger_miss_causes(led, Filter(), BOOK)
    expected = _by_hand(rows)
    assert {(c.reason, c.level): (c.calls, c.tokens, c.cost) for c in ranked} == expected
    assert len(ranked) >= 4 and {"prefix_changed", "expired", "model_changed"} <= {c.reason for c in ranked}
    assert [c.cost for c in ranked] == sorted((c.cost for c in ranked), reverse=True)
    assert ranked[0].cost > 0
    assert ranked == miss_causes(rows, BOOK)  # the in-memory grouping: the same ranking


def test_the_report_ranks_the_causes_in_every_format(traffic: tuple[Path, list[CallRecord]]) -> None:
    path, rows = traffic
    since = (rows[0].started_at - timedelta(days=1)).date().isoformat()
    base = ["report", "--db", str(path), "--since", since]
    why = CliRunner().invoke(cli, ["why", "--causes", "--db", str(path), "--since", since, "--json"])
    assert why.exit_code == 0, why.output
    causes = json.loads(why.output)
    report = CliRunner().invoke(cli, [*base, "--format", "json"])
    assert report.exit_code == 0, report.output
    shown = json.loads(report.output)["miss_causes"]
    assert [(c["reason"], c["level"], c["calls"], c["tokens"]) for c in shown] == [
        (c["reason"], c["level"], c["calls"], c["tokens"]) for c in causes
    ]
    assert [Decimal(c["cost"]) for c in shown] == [Decimal(c["cost"]) for c in causes]
    top = causes[0]
    out = CliRunner().invoke(cli, [*base, "--format", "csv"]).output
    groups, _, misses = out.partition("\n\n")
    assert "miss_cause" not in groups
    table = list(csv.DictReader(io.StringIO(misses)))
    assert [r["miss_cause"] for r in table] == [c["reason"] for c in causes]
    assert Decimal(table[0]["cost"]) == Decimal(top["cost"]) and table[0]["calls"] == str(top["calls"])
    for fmt, heading in [
        ("table", "Miss causes, costliest first"),
        ("markdown", "## Miss causes"),
        ("html", "<h2>Miss causes"),
    ]:
        text = CliRunner().invoke(cli, [*base, "--format", fmt]).output
        assert heading in text and top["reason"] in text, fmt
        assert text.index(top["reason"], text.index("Miss causes")) < text.index(
            causes[-1]["reason"], text.index("Miss causes")
        )


def test_the_report_scope_applies_to_the_causes(traffic: tuple[Path, list[CallRecord]]) -> None:
    path, rows = traffic
    since = (rows[0].started_at - timedelta(days=1)).date().isoformat()
    out = CliRunner().invoke(
        cli, ["report", "--db", str(path), "--since", since, "--model", "claude-haiku-4-5", "--json"]
    )
    shown = json.loads(out.output)["miss_causes"]
    haiku = [r for r in rows if r.model.startswith("claude-haiku")]
    assert sum(c["calls"] for c in shown) == sum(1 for r in haiku if r.miss_reason or r.api_miss_reason) >= 1


def _record(n: int, prompt: int, at: datetime, reason: str = "expired", **extra: Any) -> CallRecord:
    return CallRecord(
        request_id=f"req_{n}",
        model="claude-sonnet-4-5",
        started_at=at,
        usage=Usage(
            input_tokens=prompt - 9000,
            ephemeral_5m_input_tokens=6000,
            ephemeral_1h_input_tokens=3000,
            output_tokens=10,
        ),
        miss_reason=reason,
        miss_detail={"tokens": 8000, "level": "system"} if reason == "prefix_changed" else {"tokens": 8000},
        **extra,
    )


def _long_context_rows() -> list[CallRecord]:
    """Sonnet 4.5 with the 1M beta: one prompt under 200k, one over (a dearer tier), one batch, one
    whose API count overrides the local estimate, on two days."""
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    return [
        _record(1, 150_000, t),
        _record(2, 250_000, t + timedelta(minutes=1)),
        _record(3, 120_000, t + timedelta(minutes=2), endpoint="batch"),
        _record(
            4,
            60_000,
            t + timedelta(days=1),
            reason="prefix_changed",
            api_miss_reason="system_changed",
            api_missed_tokens=7000,
        ),
        _record(5, 60_000, t + timedelta(days=1), reason="prefix_changed"),
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    with pg_schema("cw_test") as (url, _):
        yield url


def test_a_cause_straddling_a_long_context_tier_is_priced_call_by_call(
    ledger_url: str, tmp_path: Path
) -> None:
    rows = _long_context_rows()
    with Ledger(ledger_url, spool_dir=tmp_path / "spool") as led:
        for r in rows:
            led.record(r)
        led.flush()
        ranked = ledger_miss_causes(led, Filter(), BOOK)
        window = ledger_miss_causes(led, Filter(until=datetime(2026, 3, 2, tzinfo=UTC)), BOOK)
    expected = _by_hand(rows)
    assert {(c.reason, c.level): (c.calls, c.tokens, c.cost) for c in ranked} == expected
    assert expected[("expired", None)][2] == Decimal("0.11235")  # worked out in test_the_worked_figure
    assert [c.reason for c in window] == ["expired"]
    assert ranked == miss_causes(rows, BOOK)


def test_the_worked_figure() -> None:
    """8000 missed tokens each, taken from 6000 5m writes and 2000 1h writes:
    under 200k: 6000 × (3.75 − 0.30) + 2000 × (6 − 0.30) = 20,700 + 11,400 = $0.0321;
    over 200k:  6000 × (7.50 − 0.60) + 2000 × (12 − 0.60) = 41,400 + 22,800 = $0.0642;
    batch (half price, under 200k): $0.01605. Sum: $0.11235."""
    rows = _long_context_rows()[:3]
    costs = [miss_of(r, BOOK)[1] for r in rows]
    assert costs == [Decimal("0.0321"), Decimal("0.0642"), Decimal("0.01605")]
    assert split(8000, rows[0].usage) == (6000, 2000, 0)
    assert split(8000, Usage(input_tokens=5, ephemeral_1h_input_tokens=100)) == (0, 100, 5)
    over = BOOK.rates("claude-sonnet-4-5", rows[1].started_at, prompt_tokens=250_000)
    assert saving(over, 6000, 2000, 0) == Decimal("0.0642")
