"""``execute_in_sizes``: every row written once, in runs of the given statement sizes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from cachewise.ledger.multirow import execute_in_sizes


def _insert(rows: int) -> str:
    return "INSERT INTO t (a, b) VALUES " + ", ".join(["(?, ?)"] * rows)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 300), st.sampled_from([(100, 10, 1), (7, 1), (1,)]))
def test_every_row_is_written_once_in_order(count: int, sizes: tuple[int, ...]) -> None:
    engine = create_engine("sqlite://")
    rows = [(i, f"v{i}") for i in range(count)]
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER PRIMARY KEY AUTOINCREMENT, a INTEGER, b TEXT)")
        execute_in_sizes(conn.exec_driver_sql, rows, sizes, _insert)
        stored = conn.execute(text("SELECT a, b FROM t ORDER BY n")).all()
    assert [tuple(r) for r in stored] == rows


def test_sizes_that_cannot_finish_a_run_are_refused() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn, pytest.raises(ValueError, match="end with 1"):
        execute_in_sizes(conn.exec_driver_sql, [(1, "x")], (10, 5), _insert)
