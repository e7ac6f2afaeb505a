"""A ledger frame from :class:`~cachewise.ledger.CallRecord` objects held in memory.

The same columns and dtypes as ``Ledger.to_frame()`` (docs/ledger.md), so every
report and budget check works on calls that never touched a database (the pytest
budget plugin's collector, a notebook experiment).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..ledger.query import FRAME_COLUMNS, FRAME_DTYPES, empty_frame
from ..ledger.record import CallRecord

__all__ = ["frame_from_records", "frame_from_rows"]


def frame_from_records(records: Iterable[CallRecord]) -> pd.DataFrame:
    """A ledger frame (``Ledger.to_frame(money="decimal")``) holding ``records``, oldest first."""
    rows = [record.to_row() | {"tags": dict(record.tags)} for record in records]
    if not rows:
        return empty_frame("decimal")
    rows.sort(key=lambda row: row["started_at"])
    return frame_from_rows(rows)


def frame_from_rows(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A ledger frame (the columns and dtypes of ``Ledger.to_frame(money="decimal")``) holding
    ``rows`` (mappings with those columns), in their order."""
    data: dict[str, Any] = {}
    for name in FRAME_COLUMNS:
        values = [row.get(name) for row in rows]
        dtype = FRAME_DTYPES[name]
        if name == "started_at":
            data[name] = pd.to_datetime(pd.Series(values, dtype=object), utc=True).dt.as_unit("ns")
        elif dtype is object:
            column = np.empty(len(values), dtype=object)
            column[:] = values
            data[name] = column
        elif dtype == "float64":
            data[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        elif dtype in ("int64", "bool"):
            data[name] = np.array(values, dtype=dtype)
        else:
            data[name] = pd.array(values, dtype=dtype)
    return pd.DataFrame(data, columns=list(FRAME_COLUMNS))
