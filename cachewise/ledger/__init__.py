"""The call ledger: one row per billed request, its tokens, its cost as billed, and its tags.

See docs/ledger.md. The pieces: :mod:`.record` (the row), :mod:`.schema` and
:mod:`.migrations` (the tables), :mod:`.store` (the database), :mod:`.writer` and
:mod:`.spool` (getting rows there without losing any), :mod:`.quarantine` (rows the
database refused), :mod:`.signals` (flushing on SIGTERM/SIGINT), :mod:`.query` and
:mod:`.reprice` (reading them back).
"""

from __future__ import annotations

from typing import Any

from .ledger import Ledger
from .quarantine import QuarantinedRecord
from .query import DECIMAL_FRAME_DTYPES, FRAME_COLUMNS, Filter, Totals
from .record import Breakpoint, CallRecord, CostBreakdown
from .spool import ReplayResult
from .writer import WriterStats

__all__ = [
    "DECIMAL_FRAME_DTYPES",
    "FRAME_COLUMNS",
    "FRAME_DTYPES",
    "MONEY_DTYPE",
    "Breakpoint",
    "CallRecord",
    "CostBreakdown",
    "Filter",
    "Ledger",
    "QuarantinedRecord",
    "ReplayResult",
    "Totals",
    "WriterStats",
]


def __getattr__(name: str) -> Any:
    """``FRAME_DTYPES`` and ``MONEY_DTYPE`` are built on first use (they need pandas and pyarrow)."""
    if name in ("FRAME_DTYPES", "MONEY_DTYPE"):
        from . import query

        return getattr(query, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
