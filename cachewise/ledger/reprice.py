"""What the recorded calls would have cost under another price table.

Repricing never touches the recorded "as billed" costs: it returns a frame with both,
and can keep the result in the ``reprices`` table keyed by (request_id, table_version).
Each call is priced at its own ``started_at`` with its own modifiers (batch, speed,
inference_geo), as it was billed (docs/api-notes.md §6.2, §8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from ..errors import PriceTableError, PricingError
from ..pricing import PriceBook, price
from ..pricing.book import read_table_file
from .record import CallRecord, rates_dict
from .schema import COST_COLUMNS, reprices
from .store import insert_for

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["REPRICE_COLUMNS", "load_book", "progress_callback", "reprice_rows", "store_reprices"]

#: Set by a caller that shows progress (``cachewise ledger reprice`` on a terminal):
#: called with the number of calls repriced since the previous call.
progress_callback: ContextVar[Callable[[int], None] | None] = ContextVar(
    "reprice_progress_callback", default=None
)
PROGRESS_EVERY = 1000  # calls between two progress reports

REPRICE_COLUMNS: tuple[str, ...] = (
    "request_id",
    "started_at",
    "model",
    "price_table_version",
    *COST_COLUMNS,
    "cost_error",
    "repriced_table_version",
    *(f"repriced_{name}" for name in COST_COLUMNS),
    "repriced_cost_error",
    "cost_total_delta",
)


def load_book(table: PriceBook | str | Path, base: str | Path | None = None) -> PriceBook:
    """A book from a file: an overlay (``overlay: true``) laid over ``base`` (default: the
    shipped table), else a whole table on its own."""
    if isinstance(table, PriceBook):
        return table
    path = Path(table)
    try:
        data = read_table_file(path)
    except PriceTableError:
        data = None  # PriceBook.load reports the problem with the path and field
    if isinstance(data, dict) and data.get("overlay"):
        return PriceBook.load(path, base=base)
    return PriceBook.load(base=path)


def _reprice_one(record: CallRecord, book: PriceBook) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": record.request_id,
        "started_at": record.started_at,
        "model": record.model,
        "price_table_version": record.price_table_version,
        **(record.cost.as_dict() if record.cost else dict.fromkeys(COST_COLUMNS)),
        "cost_error": record.cost_error,
        "repriced_table_version": book.version,
    }
    try:
        cost = price(book, record.usage, record.model, record.started_at, record.modifiers())
    except PricingError as exc:
        row.update({f"repriced_{name}": None for name in COST_COLUMNS})
        row["repriced_cost_error"] = str(exc)
        row["cost_total_delta"] = None
        row["_rates"] = None
        return row
    for name, value in cost.as_dict().items():
        row[f"repriced_{name}"] = value
    row["repriced_cost_error"] = None
    billed: Decimal | None = row["cost_total"]
    row["cost_total_delta"] = None if billed is None else cost.total - billed
    row["_rates"] = rates_dict(cost.rates)
    return row


def reprice_rows(records: Iterable[CallRecord], book: PriceBook) -> Iterator[dict[str, Any]]:
    """Each record priced under ``book``; reports progress to :data:`progress_callback` if set."""
    advance = progress_callback.get()
    count = 0
    for record in records:
        yield _reprice_one(record, book)
        count += 1
        if advance is not None and count == PROGRESS_EVERY:
            advance(count)
            count = 0
    if advance is not None and count:
        advance(count)


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd  # not at import time: the wrap path imports no pandas

    frame = pd.DataFrame(
        [{k: v for k, v in row.items() if k != "_rates"} for row in rows], columns=list(REPRICE_COLUMNS)
    )
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True).dt.as_unit("ns")
    for name in (*COST_COLUMNS, *(f"repriced_{n}" for n in COST_COLUMNS), "cost_total_delta"):
        frame[name] = frame[name].astype(object)
    return frame


def store_reprices(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Keep repriced costs in ``reprices`` (first result per request and table version wins)."""
    if not rows:
        return 0
    now = datetime.now(UTC)
    values = [
        {
            "request_id": row["request_id"],
            "table_version": row["repriced_table_version"],
            "priced_at": now,
            "rates": row["_rates"],
            **{name: row[f"repriced_{name}"] for name in COST_COLUMNS},
            "cost_error": row["repriced_cost_error"],
        }
        for row in rows
    ]
    stmt = insert_for(conn.dialect.name)(reprices).on_conflict_do_nothing(
        index_elements=["request_id", "table_version"]
    )
    result = conn.execute(stmt, values)
    return int(result.rowcount or 0)
