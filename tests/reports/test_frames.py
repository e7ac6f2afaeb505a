"""Every report figure against the hand-computed ledger of conftest.hand_rows (arithmetic there)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from cachewise.reports import annotate, call_detail, prefix_families, spend, totals, unpriced
from tests.fixtures.frames import HAIKU, SONNET, UNKNOWN, row

D = Decimal


def by(table: pd.DataFrame, **keys: str) -> dict[str, object]:
    mask = pd.Series(True, index=table.index)
    for key, value in keys.items():
        mask &= table[key.replace("__", ":")].astype(str) == value
    (record,) = table[mask].to_dict("records")
    return {str(k): v for k, v in record.items()}


def test_totals_exact(hand_frame: pd.DataFrame) -> None:
    t = totals(hand_frame)
    # priced rows A-F only; G (unpriced) is never $0, it is counted apart
    assert t["calls"] == 7
    assert t["unpriced_calls"] == 1
    assert t["cost_input"] == D("0.019")  # .003+.003+.006+.006+.0005+.0005
    assert t["cost_cache_write"] == D("0.0755")  # .0375 + .03 + .008
    assert t["cost_cache_read"] == D("0.0058")  # .003 + .0024 + .0004
    assert t["cost_output"] == D("0.047")  # 2*.0075 + 2*.015 + 2*.001
    assert t["cost_total"] == D("0.1473")  # .048+.0135+.051+.0234+.0095+.0019
    assert t["cost_no_cache"] == D("0.182")  # 2*.0405 + 2*.045 + 2*.0055
    assert t["savings"] == D("0.0347")  # .182 - .1473
    assert all(isinstance(t[name], Decimal) for name in ("cost_total", "cost_no_cache", "savings"))
    assert t["complete"] is False or t["complete"] == False  # noqa: E712 - numpy bool
    # unpriced G: 3000 prompt + 100 output tokens, shown apart
    assert t["unpriced_prompt_tokens"] == 3000
    assert t["unpriced_output_tokens"] == 100


def test_hit_ratio_counts_all_rows(hand_frame: pd.DataFrame) -> None:
    t = totals(hand_frame)
    # read 10000+8000+4000 = 22000; write 22000; input 1000+1000+2000+2000+500+500+3000 = 10000
    assert t["cache_read_input_tokens"] == 22000
    assert t["prompt_tokens"] == 54000
    assert t["hit_ratio"] == 22000 / 54000


def test_effective_input_price(hand_frame: pd.DataFrame) -> None:
    t = totals(hand_frame)
    # (in .019 + writes .0755 + reads .0058) / priced prompt tokens 51000 * 1e6 = 100300/51000 $/MTok
    assert t["priced_prompt_tokens"] == 51000
    assert t["effective_input_price"] == D("0.1003") * 1_000_000 / D(51000)
    per_model = spend(hand_frame, by=["model"])
    # haiku: (.001 + .008 + .0004) / 9000 * 1e6 = 9400/9000
    assert by(per_model, model=HAIKU)["effective_input_price"] == D("0.0094") * 1_000_000 / D(9000)
    # sonnet: (.018 + .0675 + .0054) / 42000 * 1e6 = 90900/42000
    assert by(per_model, model=SONNET)["effective_input_price"] == D("0.0909") * 1_000_000 / D(42000)


def test_write_waste(hand_frame: pd.DataFrame) -> None:
    rows = annotate(hand_frame).set_index("request_id")
    wasted = rows["wasted_write_tokens"].to_dict()
    # A read by B 3 min later (5m TTL): kept; C's read D came 6 min later: 8000 wasted;
    # E (1h write) read by F 50 min later: kept
    assert sum(wasted.values()) == 8000
    assert wasted["req_2026-11-01T10:30:00_claude-sonnet-4-5"] == 8000
    t = totals(hand_frame)
    assert t["wasted_write_tokens"] == 8000
    assert t["wasted_write_cost"] == D("0.03")  # C's 8000 * $3.75/M
    assert t["waste_ratio"] == 8000 / 22000


def test_write_waste_edges(make_frame) -> None:  # type: ignore[no-untyped-def]
    rows = [
        # 1h write read 61 min later: wasted; 5m write exactly 5 min before its read: kept
        row("2026-11-01T10:00:00", HAIKU, prefix="H", ephemeral_1h_input_tokens=5000),
        row("2026-11-01T11:01:00", HAIKU, prefix="H", cache_read_input_tokens=5000),
        row("2026-11-01T12:00:00", HAIKU, prefix="F", ephemeral_5m_input_tokens=2000),
        row("2026-11-01T12:05:00", HAIKU, prefix="F", cache_read_input_tokens=2000),
        # a read in another family does not count; no family: unattributed, not waste
        row("2026-11-01T13:00:00", HAIKU, prefix="X", ephemeral_5m_input_tokens=1000),
        row("2026-11-01T13:01:00", HAIKU, prefix="Y", cache_read_input_tokens=1000),
        row("2026-11-01T14:00:00", HAIKU, ephemeral_5m_input_tokens=700),
    ]
    t = totals(make_frame(rows))
    assert t["wasted_write_tokens"] == 5000 + 1000
    assert t["unattributed_write_tokens"] == 700
    # 5000 * $2/M + 1000 * $1.25/M
    assert t["wasted_write_cost"] == D("0.01") + D("0.00125")


def test_spend_by_model(hand_frame: pd.DataFrame) -> None:
    table = spend(hand_frame, by="model")
    assert list(table["model"]) == [SONNET, HAIKU, UNKNOWN]  # costliest first, unpriced last
    sonnet = by(table, model=SONNET)
    assert sonnet["cost_total"] == D("0.1359")  # .048 + .0135 + .051 + .0234
    assert sonnet["savings"] == D("0.0351")  # -.0075 + .027 - .006 + .0216
    assert sonnet["hit_ratio"] == 18000 / 42000
    haiku = by(table, model=HAIKU)
    assert haiku["cost_total"] == D("0.0114")  # .0095 + .0019
    assert haiku["savings"] == D("-0.0004")  # -.004 + .0036: the 1h write cost more than it saved
    unknown = by(table, model=UNKNOWN)
    assert unknown["cost_total"] is None  # never $0
    assert unknown["savings"] is None
    assert unknown["unpriced_calls"] == 1
    assert not unknown["complete"]


def test_spend_by_day_and_tag(hand_frame: pd.DataFrame) -> None:
    table = spend(hand_frame, by=["day", "tag:feature"])
    assert len(table) == 4
    day1 = table[table["day"] == pd.Timestamp("2026-11-01", tz="UTC")]
    chat = day1[day1["tag:feature"] == "chat"].iloc[0]
    assert chat["cost_total"] == D("0.0744")  # C .051 + D .0234
    search = day1[day1["tag:feature"] == "search"].iloc[0]
    assert search["cost_total"] == D("0.0615")  # A .048 + B .0135
    day2 = table[table["day"] == pd.Timestamp("2026-11-02", tz="UTC")]
    chat2 = day2[day2["tag:feature"] == "chat"].iloc[0]
    assert chat2["cost_total"] is None and chat2["unpriced_calls"] == 1  # only G
    per_tag = spend(hand_frame, by="tag:feature")
    # search: A+B+E+F = .048+.0135+.0095+.0019; chat: C+D (+ G unpriced, incomplete)
    assert by(per_tag, tag__feature="search")["cost_total"] == D("0.0729")
    chat_all = by(per_tag, tag__feature="chat")
    assert chat_all["cost_total"] == D("0.0744")
    assert not chat_all["complete"]


def test_missing_tag_and_bad_key(hand_frame: pd.DataFrame) -> None:
    table = spend(hand_frame, by="tag:team")
    assert list(table["tag:team"]) == ["(none)"]
    with pytest.raises(ValueError, match="cannot group by 'colour'"):
        spend(hand_frame, by="colour")
    with pytest.raises(ValueError, match="tag name"):
        spend(hand_frame, by="tag:")


def test_prefix_families(hand_frame: pd.DataFrame) -> None:
    families = prefix_families(hand_frame, top=2)
    assert list(families["prefix_hash"]) == ["P2", "P1"]  # .0744 > .0615 > P3 .0114
    assert families.iloc[0]["wasted_write_tokens"] == 8000
    assert families.iloc[0]["waste_ratio"] == 1.0


def test_unpriced_and_detail(hand_frame: pd.DataFrame) -> None:
    bad = unpriced(hand_frame)
    assert bad.to_dict("records") == [
        {
            "model": UNKNOWN,
            "cost_error": f"no model {UNKNOWN!r} in pricing/anthropic.yaml",
            "calls": 1,
            "prompt_tokens": 3000,
            "output_tokens": 100,
        }
    ]
    detail = call_detail(hand_frame, limit=2)
    assert list(detail["model"]) == [UNKNOWN, HAIKU]  # newest first
    assert detail.iloc[1]["cost_total"] == D("0.0019")


def test_empty_frame(make_frame) -> None:  # type: ignore[no-untyped-def]
    empty = make_frame([])
    t = totals(empty)
    assert t["calls"] == 0 and t["complete"]
    assert len(spend(empty, by="model")) == 0


def test_not_a_ledger_frame() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        totals(pd.DataFrame({"model": ["x"]}))


def test_money_is_never_float(hand_frame: pd.DataFrame) -> None:
    table = spend(hand_frame, by=["model", "tag:feature"])
    for name in ("cost_total", "cost_no_cache", "savings", "cost_input", "wasted_write_cost"):
        assert table[name].dtype == object
        assert all(v is None or isinstance(v, Decimal) for v in table[name])
