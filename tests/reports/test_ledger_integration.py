"""The reports on a real Ledger (SQLite in tmp_path): same figures as the hand-built frame."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd

from cachewise.ledger import Ledger
from cachewise.reports import frame_from_records, load_frame, spend, totals
from tests.fixtures.frames import SONNET, hand_rows, records_from_rows


def test_real_ledger_matches_hand_figures(hand_db: str, hand_frame: pd.DataFrame) -> None:
    frame = load_frame(hand_db)
    assert len(frame) == 7
    t = totals(frame)
    assert t["cost_total"] == Decimal("0.1473")
    assert t["savings"] == Decimal("0.0347")
    assert t["wasted_write_tokens"] == 8000
    assert t["unpriced_calls"] == 1
    hand = totals(hand_frame)
    for name in ("cost_input", "cost_cache_write", "cost_cache_read", "cost_output", "cost_no_cache",
                 "hit_ratio", "waste_ratio", "effective_input_price", "prompt_tokens"):  # fmt: skip
        assert t[name] == hand[name], name


def test_window_and_filters_pass_through(hand_db: str) -> None:
    day1 = load_frame(
        hand_db, since=datetime(2026, 11, 1, tzinfo=UTC), until=datetime(2026, 11, 2, tzinfo=UTC)
    )
    assert totals(day1)["cost_total"] == Decimal("0.1359")  # A-D, all sonnet
    chat = load_frame(hand_db, tags={"feature": "chat"}, model=SONNET)
    assert totals(chat)["cost_total"] == Decimal("0.0744")


def test_frame_from_records_matches_to_frame(hand_db: str) -> None:
    with Ledger(hand_db) as ledger:
        stored = ledger.to_frame()
    built = frame_from_records(records_from_rows(hand_rows()))
    assert list(built.columns) == list(stored.columns)
    assert built.dtypes.astype(str).to_dict() == stored.dtypes.astype(str).to_dict()
    a, b = spend(stored, by="model"), spend(built, by="model")
    assert list(a["cost_total"]) == list(b["cost_total"])


def test_hand_frame_follows_the_contract(hand_db: str, hand_frame: pd.DataFrame) -> None:
    with Ledger(hand_db) as ledger:
        stored = ledger.to_frame()
    assert list(hand_frame.columns) == list(stored.columns)
    assert hand_frame.dtypes.astype(str).to_dict() == stored.dtypes.astype(str).to_dict()


def test_load_frame_reads_numeric_exact_money(hand_db: str) -> None:
    from cachewise.ledger.query import money_dtype

    decimal = load_frame(hand_db)
    arrow = load_frame(hand_db, money="arrow")
    assert arrow["cost_total"].dtype == money_dtype()
    priced = decimal["cost_total"].notna()
    exact = [Decimal(str(v)) for v in arrow.loc[priced, "cost_total"]]
    assert exact == list(decimal.loc[priced, "cost_total"])
    assert arrow["cost_total"].isna().sum() == (~priced).sum()
