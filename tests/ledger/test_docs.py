"""docs/ledger.md shows the SQL generated from schema.py and documents every frame column."""

from __future__ import annotations

from pathlib import Path

from cachewise.ledger import FRAME_DTYPES
from cachewise.ledger.schema import render_docs, schema_sql

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"


def test_schema_sql_in_docs_is_generated_from_the_code() -> None:
    text = DOC.read_text()
    assert render_docs(text) == text, "run: python -m cachewise.ledger.schema --docs docs/ledger.md"
    assert schema_sql("sqlite") in text
    assert schema_sql("postgresql") in text
    assert "NUMERIC" in schema_sql("postgresql")


def test_every_frame_column_is_documented() -> None:
    text = DOC.read_text()
    for column in FRAME_DTYPES:
        assert f"`{column}`" in text, column
