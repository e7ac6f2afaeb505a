"""Stream the ledger out to a warehouse: parquet, CSV or JSON lines, chunk by chunk.

Memory stays at one chunk (:meth:`Ledger.iter_frames`). Money is exact in every format:
parquet keeps ``decimal128(38, 12)`` (a call whose money has no exact 10⁻¹² form is an
:class:`InexactMoneyError` naming it), CSV and JSON lines write every row's ``Decimal`` as
plain decimal text, digit for digit, never with an exponent. Times are UTC (parquet
``timestamp[ns, UTC]``, ISO 8601 with ``+00:00`` in text). Tags are a
``map<string, string>`` in parquet, JSON text in CSV and an object in JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, Literal

from .ledger import Ledger
from .query import InexactMoneyError
from .units import MONEY_COLUMNS

if TYPE_CHECKING:  # imported where a file is written: `import cachewise` loads neither
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "CHUNK_ROWS",
    "FORMATS",
    "ExportFormat",
    "InexactMoneyError",
    "decimal_text",
    "export",
    "frame_table",
]

ExportFormat = Literal["parquet", "csv", "jsonl"]
FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")
#: Rows per chunk: a chunk is held as Python rows, a frame and an arrow table at once (a few KB a
#: row), so 20,000 keep an export near 100 MB above the interpreter's, whatever the ledger's size.
CHUNK_ROWS = 20_000


def decimal_text(value: Decimal | None) -> str | None:
    """Exact plain decimal text of ``value`` (``1E-7`` is written ``0.0000001``); ``None`` stays."""
    return None if value is None else format(value, "f")


def frame_table(frame: pd.DataFrame, *, tags_as_json: bool = False) -> pa.Table:
    """A ledger frame as a pyarrow table with stable types.

    ``money="arrow"`` frames keep ``decimal128(38, 12)``; ``Decimal`` (``money="decimal"``)
    money columns become exact decimal text (:func:`decimal_text`).
    """
    import pyarrow as pa

    tags = frame["tags"]
    frame = frame.drop(columns="tags")
    for name in MONEY_COLUMNS:
        if frame[name].dtype == object:
            frame[name] = [decimal_text(v) for v in frame[name]]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in MONEY_COLUMNS:
        if not pa.types.is_decimal(table.schema.field(name).type):  # text, one type in every chunk
            table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(pa.string()))
    if tags_as_json:
        column = pa.array([json.dumps(t, sort_keys=True) for t in tags], type=pa.string())
    else:
        column = pa.array([list(t.items()) for t in tags], type=pa.map_(pa.string(), pa.string()))
    return table.append_column("tags", column)


def _jsonable(value: Any) -> Any:
    if value is None or type(value).__name__ == "NAType" or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _jsonl_lines(frame: pd.DataFrame) -> Iterator[str]:
    columns = list(frame.columns)
    stamps = frame["started_at"].map(lambda t: t.isoformat())
    for i, row in enumerate(frame.itertuples(index=False, name=None)):
        out = {name: _jsonable(value) for name, value in zip(columns, row, strict=True)}
        out["started_at"] = stamps.iloc[i]
        yield json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n"


def export(
    ledger: Ledger,
    fmt: ExportFormat,
    out: IO[bytes],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    advance: Callable[[int], None] = lambda _n: None,
) -> int:
    """Write the matching calls to ``out`` in ``fmt``; returns the number of rows written.

    Parquet reads ``money="arrow"`` frames (an :class:`InexactMoneyError` names a call whose money
    has no exact ``decimal128(38, 12)`` form); CSV and JSON lines read ``Decimal`` frames, so every
    row is written exactly.
    """
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    written = 0
    writer: Any = None
    try:
        money: Any = "arrow" if fmt == "parquet" else "decimal"
        for frame in ledger.iter_frames(since, until, model, tags, chunk_rows=chunk_rows, money=money):
            if fmt == "jsonl":
                out.write("".join(_jsonl_lines(frame)).encode())
            else:
                table = frame_table(frame, tags_as_json=fmt == "csv")
                if writer is None:
                    writer = (
                        pq.ParquetWriter(out, table.schema)
                        if fmt == "parquet"
                        else pacsv.CSVWriter(out, table.schema)
                    )
                writer.write_table(table)
            written += len(frame)
            advance(len(frame))
        if writer is None and fmt != "jsonl":  # an empty window still gets a valid file
            from .query import empty_frame

            table = frame_table(empty_frame(money), tags_as_json=fmt == "csv")
            writer = (
                pq.ParquetWriter(out, table.schema)
                if fmt == "parquet"
                else pacsv.CSVWriter(out, table.schema)
            )
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return written
