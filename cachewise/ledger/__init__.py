"""The call ledger: one row per billed request, its tokens, its cost as billed, and its tags.

See docs/ledger.md. The pieces: :mod:`.record` (the row), :mod:`.schema` and
:mod:`.migrations` (the tables), :mod:`.store` (the database), :mod:`.writer` and
:mod:`.spool` (getting rows there without losing any), :mod:`.quarantine` (rows the
database refused), :mod:`.signals` (flushing on SIGTERM/SIGINT), :mod:`.query` and
:mod:`.reprice` (reading them back).

Only the row (:mod:`.record`) is imported with the package; the rest needs SQLAlchemy and is
imported on first use of one of its names (``_LAZY``), so the send path stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names
from .record import Breakpoint, CallRecord, CostBreakdown

if TYPE_CHECKING:
    from .ledger import Ledger
    from .quarantine import QuarantinedRecord
    from .query import FRAME_COLUMNS, FRAME_DTYPES, Filter, Totals
    from .spool import ReplayResult
    from .writer import WriterStats

__all__ = [
    "FRAME_COLUMNS",
    "FRAME_DTYPES",
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

#: Names imported on first use (they need SQLAlchemy), and the module each lives in.
_LAZY = {
    "Ledger": "ledger",
    "QuarantinedRecord": "quarantine",
    **dict.fromkeys(("FRAME_COLUMNS", "FRAME_DTYPES", "Filter", "Totals"), "query"),
    "ReplayResult": "spool",
    "WriterStats": "writer",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
