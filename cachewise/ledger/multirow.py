"""Rows written to SQLite by multi-row statements of a few fixed sizes.

One ``INSERT ... VALUES (...), (...), ...`` step runs without the GIL, where ``executemany`` takes it
back after every row (and so waits behind the thread building the next chunk). A few fixed sizes,
largest first and ending with 1, keep the cached statement texts few.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

__all__ = ["execute_in_sizes"]


def execute_in_sizes(
    execute: Callable[[str, tuple[Any, ...]], object],
    rows: Sequence[Sequence[Any]],
    sizes: Sequence[int],
    statement: Callable[[int], str],
) -> None:
    """Run ``execute(statement(size), values)`` over ``rows`` in runs of ``sizes`` (which must end
    with 1). ``execute``: a connection's ``exec_driver_sql`` or a raw DB-API cursor's ``execute``."""
    if sizes[-1] != 1:
        raise ValueError(f"statement sizes must end with 1, got {tuple(sizes)!r}")
    start = 0
    for size in sizes:
        while len(rows) - start >= size:
            execute(statement(size), tuple(chain.from_iterable(rows[start : start + size])))
            start += size
