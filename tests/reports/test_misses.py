"""Miss causes ranked by money, from ledger records (no pandas)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from cachewise.diagnose import missed_cost
from cachewise.ledger import CallRecord
from cachewise.pricing import PriceBook
from cachewise.reports.misses import miss_causes
from cachewise.usage import Usage

AT = datetime(2026, 3, 2, tzinfo=UTC)
MODEL = "claude-sonnet-4-6"


def _record(i: int, reason: str | None, tokens: int, **rest: object) -> CallRecord:
    usage = Usage(input_tokens=20, ephemeral_5m_input_tokens=tokens, output_tokens=3)
    detail = None if reason is None else {"reason": reason, "tokens": tokens, **rest}
    return CallRecord.priced(
        usage=usage, model=MODEL, started_at=AT, request_id=f"r{i}", miss_reason=reason, miss_detail=detail
    )


def test_causes_group_by_reason_and_level_and_rank_by_cost() -> None:
    records = [
        _record(1, "expired", 1000),
        _record(2, "expired", 1000),
        _record(3, "prefix_changed", 5000, level="system"),
        _record(4, "prefix_changed", 100, level="tools"),
        _record(5, None, 0),
    ]
    causes = miss_causes(records)
    assert [(c.reason, c.level, c.calls) for c in causes] == [
        ("prefix_changed", "system", 1),
        ("expired", None, 2),
        ("prefix_changed", "tools", 1),
    ]
    book = PriceBook.default()
    one = missed_cost(book, records[0].usage, MODEL, AT, 1000)
    assert causes[1].cost == 2 * one and causes[1].tokens == 2000
    assert all(isinstance(c.cost, Decimal) for c in causes)


def test_the_apis_tokens_win_and_unknown_models_are_unpriced() -> None:
    api = CallRecord.priced(
        usage=Usage(ephemeral_5m_input_tokens=800), model=MODEL, started_at=AT, request_id="a",
        miss_reason="prefix_changed", miss_detail={"tokens": 800, "level": "tools"},
        api_miss_reason="tools_changed", api_missed_tokens=500,
    )  # fmt: skip
    hit = CallRecord.priced(
        usage=Usage(input_tokens=800), model=MODEL, started_at=AT, request_id="c",
        api_miss_reason="messages_changed", api_missed_tokens=700,
    )  # fmt: skip
    unknown = CallRecord.priced(
        usage=Usage(ephemeral_5m_input_tokens=800), model="claude-nobody-1", started_at=AT, request_id="b",
        miss_reason="expired", miss_detail={"tokens": 800},
    )  # fmt: skip
    causes = {c.reason: c for c in miss_causes([api, unknown, hit])}
    assert causes["prefix_changed"].tokens == 500
    assert causes["prefix_changed"].cost == missed_cost(PriceBook.default(), api.usage, MODEL, AT, 500)
    assert (causes["api:messages_changed"].tokens, causes["api:messages_changed"].cost) == (0, 0)
    assert causes["expired"].unpriced == 1 and causes["expired"].cost == 0
