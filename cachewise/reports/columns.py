"""The ledger frame contract the reports read, and the columns they derive from it.

A ledger frame is what ``Ledger.to_frame()`` returns (docs/ledger.md): one row per
call, token counts with the API's own names (int64), money as ``Decimal`` in
object columns (``None`` when the call could not be priced, with ``cost_error``
saying why).
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from ..ledger.schema import COST_COLUMNS as LEDGER_COST_COLUMNS
from ..ledger.schema import TOKEN_COLUMNS as LEDGER_TOKEN_COLUMNS

__all__ = [
    "COST_COLUMNS",
    "MONEY_OUT",
    "TOKEN_COLUMNS",
    "ZERO",
    "check_frame",
    "unpriced_mask",
]

ZERO = Decimal(0)

# The ledger's own lists: one definition of the frame contract.
TOKEN_COLUMNS: tuple[str, ...] = LEDGER_TOKEN_COLUMNS
COST_COLUMNS: tuple[str, ...] = LEDGER_COST_COLUMNS

# Money columns of an aggregated report, in display order.
MONEY_OUT: tuple[str, ...] = (
    "cost_input",
    "cost_cache_write",
    "cost_cache_read",
    "cost_output",
    "cost_tools",
    "cost_total",
    "cost_no_cache",
    "savings",
    "wasted_write_cost",
)

_REQUIRED = ("started_at", "model", "cost_error", "prefix_hash", "tags", *TOKEN_COLUMNS, *COST_COLUMNS)


def check_frame(frame: pd.DataFrame) -> None:
    """Raise ``ValueError`` naming the missing columns when ``frame`` is not a ledger frame."""
    missing = [name for name in _REQUIRED if name not in frame.columns]
    if missing:
        raise ValueError(f"not a ledger frame (Ledger.to_frame()): missing columns {', '.join(missing)}")


def unpriced_mask(frame: pd.DataFrame) -> pd.Series:
    """Rows that could not be priced: a ``cost_error``, or no ``cost_total``. Never read as $0."""
    return frame["cost_error"].notna() | frame["cost_total"].isna()
