"""``cachewise export``: a parquet, CSV or JSON-lines export read back equals the ledger."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.ledger import CallRecord, CostBreakdown, Ledger
from cachewise.ledger.schema import COST_COLUMNS, TOKEN_COLUMNS
from cachewise.ledger.units import MONEY_COLUMNS

from .conftest import Backend, make_record
from .test_units import random_records


def _filled(open_ledger: Callable[..., Ledger], count: int = 230) -> list[CallRecord]:
    led = open_ledger()
    records = random_records(count, seed=44)
    for record in records:
        led.record(record)
    led.close()
    return sorted(records, key=lambda r: (r.started_at, r.request_id))


def _run(backend: Backend, *args: str) -> str:
    result = CliRunner().invoke(cli, ["export", "--db", backend.url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_parquet_export_reads_back_equal_to_the_ledger(
    backend: Backend, open_ledger: Callable[..., Ledger], tmp_path: Path
) -> None:
    records = _filled(open_ledger)
    out = tmp_path / "calls.parquet"
    _run(backend, "--format", "parquet", "--output", str(out), "--chunk-rows", "100")
    table = pq.read_table(out)
    assert table.num_rows == len(records)
    assert str(table.schema.field("cost_total").type) == "decimal128(38, 12)"
    assert str(table.schema.field("started_at").type) == "timestamp[ns, tz=UTC]"
    rows = table.to_pylist()
    for row, record in zip(rows, records, strict=True):
        assert row["request_id"] == record.request_id
        assert row["started_at"] == record.started_at
        assert row["started_at"].utcoffset().total_seconds() == 0
        for name in TOKEN_COLUMNS:
            assert row[name] == getattr(record.usage, name)
        for name in COST_COLUMNS:
            expected = None if record.cost is None else getattr(record.cost, name)
            assert row[name] == expected, name
        assert row["code_execution_hours"] == record.usage.code_execution_hours
        assert dict(row["tags"]) == dict(record.tags)
        assert row["cost_error"] == record.cost_error


def test_csv_and_jsonl_exports_keep_money_exact(
    backend: Backend, open_ledger: Callable[..., Ledger], tmp_path: Path
) -> None:
    records = _filled(open_ledger, 120)
    out = tmp_path / "calls.csv"
    _run(backend, "--format", "csv", "--output", str(out), "--chunk-rows", "50")
    table = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)).to_pylist()
    assert [r["request_id"] for r in table] == [r.request_id for r in records]
    for row, record in zip(table, records, strict=True):
        if record.cost is not None:
            assert Decimal(str(row["cost_total"])) == record.cost.cost_total
        assert json.loads(row["tags"]) == dict(record.tags)
    lines = _run(backend, "--format", "jsonl").splitlines()
    assert len(lines) == len(records)
    for line, record in zip(lines, records, strict=True):
        row = json.loads(line)
        assert row["request_id"] == record.request_id
        assert row["started_at"].endswith("+00:00")
        if record.cost is not None:
            assert Decimal(row["savings"]) == record.cost.savings
        else:
            assert row["savings"] is None
        assert row["tags"] == dict(record.tags)


def test_export_window_and_empty_ledger(
    backend: Backend, open_ledger: Callable[..., Ledger], tmp_path: Path
) -> None:
    records = _filled(open_ledger, 60)
    middle = records[30].started_at.isoformat()
    out = tmp_path / "later.parquet"
    _run(backend, "--format", "parquet", "--since", middle, "--output", str(out))
    assert pq.read_table(out).num_rows == 30
    _run(backend, "--format", "parquet", "--since", "2999-01-01", "--output", str(out))
    assert pq.read_table(out).num_rows == 0


def test_text_exports_write_plain_decimals_for_every_row(
    backend: Backend, open_ledger: Callable[..., Ledger], tmp_path: Path
) -> None:
    """Money with no 10^-12 form, or tiny enough for an exponent, is exact text in CSV and JSON lines."""
    led = open_ledger()
    fine = make_record(7)  # 24-decimal costs: no exact decimal128(38, 12) form
    tiny = make_record(8, cost=CostBreakdown(*([Decimal("0.0000001")] * len(COST_COLUMNS))))
    for record in (fine, tiny):
        led.record(record)
    led.close()
    lines = [json.loads(line) for line in _run(backend, "--format", "jsonl").splitlines()]
    assert fine.cost is not None
    assert lines[0]["cost_total"] == format(fine.cost.cost_total, "f")
    assert lines[1]["cost_total"] == "0.0000001"  # str(Decimal) would write 1E-7
    out = tmp_path / "calls.csv"
    _run(backend, "--format", "csv", "--output", str(out))
    text = out.read_text()
    assert format(fine.cost.cost_total, "f") in text and "E-" not in text
    rows = pacsv.read_csv(
        out, convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in MONEY_COLUMNS})
    ).to_pylist()
    assert [Decimal(r["savings"]) for r in rows] == [fine.cost.savings, Decimal("0.0000001")]


def test_parquet_export_names_a_call_it_cannot_hold_exactly(
    backend: Backend, open_ledger: Callable[..., Ledger], tmp_path: Path
) -> None:
    led = open_ledger()
    led.record(make_record(1, cost=CostBreakdown(*([Decimal("0.25")] * len(COST_COLUMNS)))))
    led.record(make_record(7))
    led.close()
    out = tmp_path / "calls.parquet"
    result = CliRunner().invoke(cli, ["export", "--db", backend.url, "--format", "parquet", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "Error: --format parquet: call req_00000007" in result.output
    assert "--format jsonl" in result.output and "Traceback" not in result.output
    assert not out.exists()  # no partial file left behind
