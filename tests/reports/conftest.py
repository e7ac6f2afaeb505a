"""Fixtures for the report and budget tests: ledger frames built by hand, following the
``Ledger.to_frame()`` contract exactly (docs/ledger.md), and a hand-computed ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

D = Decimal

TOKENS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens",
    "output_tokens",
    "web_search_requests",
    "web_fetch_requests",
)
COSTS = (
    "cost_input",
    "cost_cache_write_5m",
    "cost_cache_write_1h",
    "cost_cache_read",
    "cost_output",
    "cost_web_search",
    "cost_code_execution",
    "cost_total",
    "cost_no_cache",
    "savings",
)

# Per million tokens: (input, 5m write, 1h write, read, output), docs/api-notes.md §6.
RATES = {
    "claude-sonnet-4-5": (D("3"), D("3.75"), D("6"), D("0.30"), D("15")),
    "claude-haiku-4-5": (D("1"), D("1.25"), D("2"), D("0.10"), D("5")),
}


def priced(model: str, **tokens: int) -> dict[str, Decimal]:
    """Costs of one row at RATES (the same arithmetic as cachewise.pricing.price, no tiers)."""
    rin, r5, r1, rr, rout = RATES[model]
    m = D(1_000_000)
    cost = {
        "cost_input": tokens.get("input_tokens", 0) * rin / m,
        "cost_cache_write_5m": tokens.get("ephemeral_5m_input_tokens", 0) * r5 / m,
        "cost_cache_write_1h": tokens.get("ephemeral_1h_input_tokens", 0) * r1 / m,
        "cost_cache_read": tokens.get("cache_read_input_tokens", 0) * rr / m,
        "cost_output": tokens.get("output_tokens", 0) * rout / m,
        "cost_web_search": D(0),
        "cost_code_execution": D(0),
    }
    cost["cost_total"] = sum(cost.values(), D(0))
    prompt = (
        tokens.get("input_tokens", 0)
        + tokens.get("ephemeral_5m_input_tokens", 0)
        + tokens.get("ephemeral_1h_input_tokens", 0)
        + tokens.get("cache_read_input_tokens", 0)
    )
    cost["cost_no_cache"] = prompt * rin / m + cost["cost_output"]
    cost["savings"] = cost["cost_no_cache"] - cost["cost_total"]
    return cost


def row(
    at: str,
    model: str,
    *,
    prefix: str | None = None,
    tags: Mapping[str, str] | None = None,
    cost_error: str | None = None,
    request_id: str | None = None,
    **tokens: int,
) -> dict[str, Any]:
    """One ledger row. Priced at RATES unless ``cost_error`` is given (then every cost is None)."""
    out: dict[str, Any] = {
        "request_id": request_id or f"req_{at}_{model}",
        "started_at": datetime.fromisoformat(at).replace(tzinfo=UTC),
        "model": model,
        "endpoint": "messages",
        "status": "ok",
        "error_type": None,
        "batch_id": None,
        "service_tier": "standard",
        "inference_geo": None,
        "speed": None,
    }
    for name in TOKENS:
        out[name] = int(tokens.get(name, 0))
    out["cache_creation_input_tokens"] = out["ephemeral_5m_input_tokens"] + out["ephemeral_1h_input_tokens"]
    out |= {"latency_ms": 100.0, "ttft_ms": 50.0, "incomplete": False, "ttl_split_missing": False}
    out["price_table_version"] = None if cost_error else "test-1"
    costs = {name: None for name in COSTS} if cost_error else priced(model, **tokens)
    out |= costs
    out["cost_error"] = cost_error
    out["prefix_hash"] = prefix
    out["tags"] = dict(tags or {})
    return out


def frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A ledger frame with exactly the columns and dtypes of ``Ledger.to_frame()``."""
    from cachewise.ledger import DECIMAL_FRAME_DTYPES as FRAME_DTYPES
    from cachewise.ledger import FRAME_COLUMNS

    records = [
        {"message_id": None, "custom_id": None, "code_execution_hours": D(0), "planned": False} | dict(r)
        for r in rows
    ]
    data: dict[str, Any] = {}
    for name in FRAME_COLUMNS:
        values = [r[name] for r in records]
        dtype = FRAME_DTYPES[name]
        if name == "started_at":
            data[name] = pd.to_datetime(pd.Series(values, dtype=object), utc=True).dt.as_unit("ns")
        elif dtype is object:
            column = np.empty(len(values), dtype=object)
            column[:] = values
            data[name] = column
        else:
            data[name] = (
                pd.array(values, dtype=dtype)
                if dtype not in ("int64", "float64", "bool")
                else (np.array(values, dtype=dtype))
            )
    return pd.DataFrame(data, columns=list(FRAME_COLUMNS))


SONNET = "claude-sonnet-4-5"
HAIKU = "claude-haiku-4-5"
UNKNOWN = "claude-unknown-9"


def hand_rows() -> list[dict[str, Any]]:
    """Seven calls over two days; every figure of the report tests is worked out from these.

    Sonnet 4.5: $3 in, $3.75 5m write, $6 1h write, $0.30 read, $15 out per MTok.
    Haiku 4.5:  $1 in, $1.25 5m write, $2 1h write, $0.10 read, $5 out per MTok.

    A 11-01 10:00 sonnet P1 search  in 1000 w5m 10000 out 500
      in .003 + w .0375 + out .0075 = total .048; no-cache 11000*3e-6 + .0075 = .0405; savings -.0075
    B 11-01 10:03 sonnet P1 search  in 1000 read 10000 out 500        (reads A 3 min later: A not wasted)
      in .003 + r .003 + out .0075 = .0135; no-cache .0405; savings .027
    C 11-01 10:30 sonnet P2 chat    in 2000 w5m 8000 out 1000
      in .006 + w .03 + out .015 = .051; no-cache 10000*3e-6 + .015 = .045; savings -.006
    D 11-01 10:36 sonnet P2 chat    in 2000 read 8000 out 1000        (6 min after C: C's 8000 wasted)
      in .006 + r .0024 + out .015 = .0234; no-cache .045; savings .0216
    E 11-02 09:00 haiku  P3 search  in 500 w1h 4000 out 200
      in .0005 + w .008 + out .001 = .0095; no-cache 4500*1e-6 + .001 = .0055; savings -.004
    F 11-02 09:50 haiku  P3 search  in 500 read 4000 out 200          (50 min after E, 1h TTL: not wasted)
      in .0005 + r .0004 + out .001 = .0019; no-cache .0055; savings .0036
    G 11-02 12:00 claude-unknown-9, no prefix, chat, in 3000 out 100: UNPRICED (cost_error)
    """
    return [
        row("2026-11-01T10:00:00", SONNET, prefix="P1", tags={"feature": "search"},
            input_tokens=1000, ephemeral_5m_input_tokens=10000, output_tokens=500),
        row("2026-11-01T10:03:00", SONNET, prefix="P1", tags={"feature": "search"},
            input_tokens=1000, cache_read_input_tokens=10000, output_tokens=500),
        row("2026-11-01T10:30:00", SONNET, prefix="P2", tags={"feature": "chat"},
            input_tokens=2000, ephemeral_5m_input_tokens=8000, output_tokens=1000),
        row("2026-11-01T10:36:00", SONNET, prefix="P2", tags={"feature": "chat"},
            input_tokens=2000, cache_read_input_tokens=8000, output_tokens=1000),
        row("2026-11-02T09:00:00", HAIKU, prefix="P3", tags={"feature": "search"},
            input_tokens=500, ephemeral_1h_input_tokens=4000, output_tokens=200),
        row("2026-11-02T09:50:00", HAIKU, prefix="P3", tags={"feature": "search"},
            input_tokens=500, cache_read_input_tokens=4000, output_tokens=200),
        row("2026-11-02T12:00:00", UNKNOWN, tags={"feature": "chat"},
            cost_error=f"no model {UNKNOWN!r} in pricing/anthropic.yaml",
            input_tokens=3000, output_tokens=100),
    ]  # fmt: skip


@pytest.fixture
def hand_frame() -> pd.DataFrame:
    return frame(hand_rows())


@pytest.fixture
def make_frame() -> Callable[[Iterable[Mapping[str, Any]]], pd.DataFrame]:
    return frame


def records_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Any]:
    """CallRecords for hand rows, priced by the shipped table (same rates as RATES)."""
    from cachewise.ledger import CallRecord
    from cachewise.pricing import PriceBook
    from cachewise.usage import Usage

    book = PriceBook.default()
    out = []
    for r in rows:
        usage = Usage(
            input_tokens=r["input_tokens"],
            cache_read_input_tokens=r["cache_read_input_tokens"],
            ephemeral_5m_input_tokens=r["ephemeral_5m_input_tokens"],
            ephemeral_1h_input_tokens=r["ephemeral_1h_input_tokens"],
            output_tokens=r["output_tokens"],
        )
        out.append(
            CallRecord.priced(
                usage=usage,
                model=r["model"],
                started_at=r["started_at"].to_pydatetime()
                if hasattr(r["started_at"], "to_pydatetime")
                else r["started_at"],
                request_id=r["request_id"],
                book=book,
                prefix_hash=r["prefix_hash"],
                tags=dict(r["tags"]),
                status=r.get("status", "ok"),
            )
        )
    return out


def write_ledger(path: Any, rows: Iterable[Mapping[str, Any]]) -> str:
    """A SQLite ledger at ``path`` holding ``rows``; returns its path as a string."""
    from cachewise.ledger import Ledger

    with Ledger(str(path), spool_dir=str(path) + ".spool") as ledger:
        for record in records_from_rows(rows):
            ledger.record(record)
        ledger.flush()
    return str(path)


@pytest.fixture
def hand_db(tmp_path: Any) -> str:
    return write_ledger(tmp_path / "ledger.db", hand_rows())
