"""Sums grouped in SQL equal the frame-based report computation, on SQLite and PostgreSQL.

Random ledgers mix every priced model, modifiers (batch, fast, US residency), both TTLs,
prefix families whose reads come in and out of the cache lifetimes (and at the very same
instant), tags present and missing, unpriced calls and a few rows whose money has no exact
10⁻¹² units. Every table a report shows is compared with the pandas computation over
``Ledger.to_frame()`` (``cachewise.reports.frames``), which adds the per-row ``Decimal`` costs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from cachewise.ledger import CallRecord, CostBreakdown, Filter, Ledger
from cachewise.ledger.aggregate import GroupSums, group_sums, rollup
from cachewise.ledger.schema import COST_COLUMNS
from cachewise.ledger.units import MAX_SQLITE_SUM_USD
from cachewise.pricing import Modifiers, PriceBook
from cachewise.reports import build_report
from cachewise.reports.frames import call_detail, family_labels, prefix_families, spend, totals, unpriced
from cachewise.reports.source import FrameSource, LedgerSource
from cachewise.usage import Usage
from tests.ledger.conftest import make_record

T0 = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # the window crosses a day and a month


def random_ledger(count: int, seed: int) -> list[CallRecord]:
    rng = random.Random(seed)
    book = PriceBook.default()
    models = [e.id for e in book.models() if e.prices and e.prices[0].from_ <= T0.date()]
    families = [f"fam{n:02d}" for n in range(4)]
    out: list[CallRecord] = []
    at = T0
    for i in range(count):
        at += timedelta(seconds=rng.choice((0, 0, 30, 150, 150, 300, 300, 301, 700, 1800, 3600, 4000)))
        family = rng.choice([*families, None])
        write = rng.choice((0, 0, rng.randrange(1, 9000)))
        one_hour = rng.choice((0, write, rng.randrange(0, write + 1)))
        usage = Usage(
            input_tokens=rng.randrange(0, 5000),
            cache_read_input_tokens=rng.choice((0, rng.randrange(1, 9000))),
            ephemeral_5m_input_tokens=write - one_hour,
            ephemeral_1h_input_tokens=one_hour,
            output_tokens=rng.randrange(0, 2000),
            web_search_requests=rng.choice((0, 0, 0, 3)),
        )
        tags = {k: v for k, v in (("feature", rng.choice(("chat", "search", None))),
                                  ("user", rng.choice(("u1", "u2")))) if v}  # fmt: skip
        common: dict[str, Any] = {
            "started_at": at,
            "request_id": f"agg_{seed}_{i:05d}",
            "prefix_hash": family,
            "tags": tags,
        }
        if rng.random() < 0.05:  # finer than 10^-12: no units, summed from the decimal columns
            out.append(make_record(i, usage=usage, **common))
            continue
        model = rng.choice(models) if rng.random() > 0.05 else "claude-unknown-9"
        modifiers = Modifiers(
            batch=rng.random() < 0.3,
            speed="fast" if rng.random() < 0.1 else None,
            inference_geo="us" if rng.random() < 0.2 else None,
        )
        out.append(CallRecord.priced(usage=usage, model=model, book=book, modifiers=modifiers, **common))
    return out


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    left, right = a.to_dict("records"), b.to_dict("records")
    assert len(left) == len(right)
    for x, y in zip(left, right, strict=True):
        for name in x:
            same = x[name] == y[name] or (pd.isna(x[name]) and pd.isna(y[name]))
            assert same, (name, x, y)


@pytest.fixture
def filled(ledger: Ledger) -> tuple[Ledger, list[CallRecord]]:
    records = random_ledger(700, seed=11)
    for record in records:
        ledger.record(record)
    ledger.flush()
    return ledger, records


KEYS: tuple[Sequence[str], ...] = (
    (),
    ("model",),
    ("model", "tag:feature"),
    ("day",),
    ("month", "tag:user"),
    ("prefix_hash",),
    ("status", "tag:feature", "day"),
)


@pytest.mark.parametrize(
    "window",
    [
        {},
        {"since": T0 + timedelta(hours=3), "until": T0 + timedelta(hours=20)},
        {"tags": {"feature": "chat"}},
    ],
    ids=["all", "window", "tag"],
)
def test_every_report_table_equals_the_frame_computation(
    filled: tuple[Ledger, list[CallRecord]], window: dict[str, Any]
) -> None:
    ledger, _ = filled
    frame = ledger.to_frame(**window)
    assert len(frame) > 50
    source = LedgerSource(ledger, Filter(**window))
    for keys in KEYS:
        _same(source.spend(keys), spend(frame, keys))
    assert source.totals() == totals(frame)
    _same(source.unpriced(), unpriced(frame))
    assert len(source.unpriced())
    for top in (0, 3, 20):
        _same(source.families(top), prefix_families(frame, top))
    prefixes = sorted(set(frame["prefix_hash"].dropna()))
    assert source.family_labels(prefixes) == family_labels(frame)
    _same(source.calls(9), call_detail(frame, 9))
    t = source.totals()
    assert 0 < t["wasted_write_tokens"] < t["cache_creation_input_tokens"]
    assert t["unattributed_write_tokens"] > 0


def test_the_report_bundle_is_the_same_from_sql_and_from_the_frame(
    filled: tuple[Ledger, list[CallRecord]],
) -> None:
    ledger, _ = filled
    frame = ledger.to_frame()
    by = ["model", "tag:feature"]
    sql = build_report(LedgerSource(ledger, Filter()), by, top=5, calls=4)
    rows = build_report(frame, by, top=5, calls=4)
    assert isinstance(rows.source, FrameSource)
    assert sql.totals == rows.totals
    assert sql.labels == rows.labels and sql.labels
    for name in ("groups", "families", "unpriced", "calls"):
        _same(getattr(sql, name), getattr(rows, name))


def test_group_sums_equal_the_per_row_decimal_costs(filled: tuple[Ledger, list[CallRecord]]) -> None:
    ledger, records = filled
    with ledger.read() as conn:
        groups = group_sums(conn, Filter(), ["model"])
    assert sum(g.calls for g in groups) == len(records)
    for group in groups:
        mine = [r for r in records if r.model == group.key[0]]
        priced = [r for r in mine if r.cost is not None and r.cost_error is None]
        assert group.calls == len(mine)
        assert group.unpriced_calls == len(mine) - len(priced)
        for name in COST_COLUMNS:
            expected = sum((getattr(r.cost, name) for r in priced), Decimal(0))
            assert group.money[name] == expected, (group.key, name)
        assert group.tokens["output_tokens"] == sum(r.usage.output_tokens for r in mine)


def test_rollup_adds_groups_onto_fewer_keys() -> None:
    def group(key: tuple[Any, ...], n: int) -> GroupSums:
        return GroupSums(key, n, 1, {"input_tokens": n}, {"cost_total": Decimal(n) / 10})

    out = rollup([group(("a", "x"), 1), group(("b", "x"), 2), group(("a", "y"), 4)], [0])
    assert [(g.key, g.calls, g.unpriced_calls, g.tokens["input_tokens"]) for g in out] == [
        (("a",), 5, 2, 5),
        (("b",), 2, 1, 2),
    ]
    assert out[0].money["cost_total"] == Decimal("0.5")


def test_unknown_keys_are_refused_by_name(ledger: Ledger) -> None:
    with ledger.read() as conn:
        with pytest.raises(ValueError, match="cannot group by 'colour'"):
            group_sums(conn, Filter(), ["colour"])
        with pytest.raises(ValueError, match="tag name"):
            group_sums(conn, Filter(), ["tag:"])
        assert group_sums(conn, Filter(), ["model"]) == []


def test_group_sums_past_64_bits_stay_exact(open_ledger: Callable[..., Ledger]) -> None:
    ledger = open_ledger()
    big = Decimal("4000000.123456789012")  # whole units; three exceed one SQLite SUM
    for i in range(3):
        ledger.record(make_record(i, cost=CostBreakdown(*([big] * len(COST_COLUMNS)))))
    ledger.flush()
    assert 3 * big > MAX_SQLITE_SUM_USD
    with ledger.read() as conn:
        (group,) = group_sums(conn, Filter(), ["model"])
    assert group.money["cost_total"] == 3 * big
    assert LedgerSource(ledger, Filter()).totals()["cost_total"] == 3 * big
