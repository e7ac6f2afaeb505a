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
    from .query import ARROW_FRAME_DTYPES, FRAME_COLUMNS, FRAME_DTYPES, MONEY_DTYPE, Filter, Totals
    from .spool import ReplayResult
    from .writer import WriterStats

__all__ = [
    "ARROW_FRAME_DTYPES",
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

#: Names imported on first use (they need SQLAlchemy; ``ARROW_FRAME_DTYPES`` and ``MONEY_DTYPE`` also
#: pandas and pyarrow, built by :mod:`.query` when first asked for), and the module each lives in.
_LAZY = {
    "Ledger": "ledger",
    "QuarantinedRecord": "quarantine",
    **dict.fromkeys(
        ("FRAME_DTYPES", "FRAME_COLUMNS", "ARROW_FRAME_DTYPES", "MONEY_DTYPE", "Filter", "Totals"), "query"
    ),
    "ReplayResult": "spool",
    "WriterStats": "writer",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
