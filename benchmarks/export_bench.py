"""``cachewise export --format parquet`` of a populated ledger, read back with pyarrow and checked
equal to the ledger row by row (both databases).

    .venv/bin/python benchmarks/export_bench.py [--rows 1000000] [--pg URL] [--skip-pg] [--skip-sqlite]

The ledger is filled through ``Store.insert`` with ``--rows`` priced rows of every model,
modifier and TTL mix (5,000 distinct rows under fresh request ids; not timed). The export
runs in a fresh process (its peak RSS is the export's own; the RSS after its imports is printed
beside it) and is timed next to one raw ``SELECT`` of the same columns streamed over the same
database (the baseline). The check reads the parquet file back in batches and compares every row's
request id, time, token counts, every money column (as ``Decimal``, digit for digit against
the stored decimal text or ``NUMERIC``) and tags with a second raw read of the database in
the export's order (``started_at``, ``id``): the export is not checked against itself.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cachewise.ledger import Ledger
from cachewise.ledger.export import export
from cachewise.ledger.schema import TOKEN_COLUMNS
from cachewise.ledger.store import Store
from cachewise.ledger.units import MONEY_COLUMNS
from tests.ledger.test_units import random_records

COLUMNS = ("request_id", "started_at", *TOKEN_COLUMNS, *MONEY_COLUMNS, "tags")


def populate(url: str, rows: int) -> None:
    store = Store(url)
    store.upgrade()
    template = random_records(5000, seed=21)
    for start in range(0, rows, len(template)):
        part = template[: min(len(template), rows - start)]
        store.insert([replace(r, request_id=f"x{start + j:09d}") for j, r in enumerate(part)])
    store.dispose()


def _rows(url: str) -> Any:
    """The ledger's rows in the export's order, straight from the database (no cachewise reader)."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM calls ORDER BY started_at, id"
    if url.startswith("postgresql"):
        conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
        with conn, conn.cursor(name="export_check") as cursor:
            cursor.itersize = 50_000
            cursor.execute(sql)
            yield from cursor
        return
    import sqlite3

    conn3 = sqlite3.connect(url)
    try:
        yield from conn3.execute(sql)
    finally:
        conn3.close()


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def check(url: str, path: Path) -> tuple[int, int]:
    """(rows compared, rows that differ) between the parquet file and the database."""
    stored = _rows(url)
    compared = differ = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=50_000, columns=list(COLUMNS)):
        for got in batch.to_pylist():
            want = next(stored)
            compared += 1
            same = got["request_id"] == want[0] and got["started_at"] == _time(want[1])
            base = 2
            for k, name in enumerate(TOKEN_COLUMNS):
                same = same and got[name] == want[base + k]
            base += len(TOKEN_COLUMNS)
            for k, name in enumerate(MONEY_COLUMNS):
                value = want[base + k]
                expected = None if value is None else Decimal(str(value))
                same = same and got[name] == expected and (expected is None or got[name].is_finite())
            raw_tags = want[-1]
            tags = raw_tags if isinstance(raw_tags, dict) else json.loads(raw_tags or "{}")
            same = same and dict(got["tags"] or []) == tags
            differ += not same
    leftover = sum(1 for _ in stored)
    return compared, differ + leftover


def bench(url: str, rows: int, label: str, tmp: Path) -> None:
    populate(url, rows)
    start = time.perf_counter()
    scanned = sum(1 for _ in _rows(url))
    scan = time.perf_counter() - start
    out = tmp / f"{label}.parquet"
    done = subprocess.run(
        [sys.executable, __file__, "--measure", url, "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    written, seconds = measured["rows"], measured["seconds"]
    rss, rss_before = measured["peak_rss_mb"], measured["opened_rss_mb"]
    start = time.perf_counter()
    compared, differ = check(url, out)
    check_s = time.perf_counter() - start
    print(
        f"{label:9} parquet export: {written} rows in {seconds:.1f} s ({written / seconds:.0f} rows/s, "
        f"{out.stat().st_size / 2**20:.0f} MiB) | one raw SELECT of the same rows {scan:.1f} s "
        f"({scanned} rows) | ratio {seconds / scan:.1f}x | exporting process peak RSS {rss:.0f} MiB "
        f"(after its imports {rss_before:.0f}) | "
        f"read back with pyarrow: {compared} rows compared in {check_s:.0f} s, {differ} differ -> "
        f"{'EQUAL' if differ == 0 and compared == written == rows else 'NOT EQUAL'}"
    )


def peak_mb() -> float:
    """This process's own peak RSS: ``VmHWM`` (``ru_maxrss`` would keep the parent's peak across
    ``fork`` and ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(url: str, out: Path) -> dict[str, float]:
    """In a fresh process: the export alone, its time and its peak RSS."""
    opened = peak_mb()
    with tempfile.TemporaryDirectory() as spool, Ledger(url, spool_dir=spool, flush_on_signal=False) as led:
        start = time.perf_counter()
        with out.open("wb") as handle:
            written = export(led, "parquet", handle)
        seconds = time.perf_counter() - start
    peak = peak_mb()
    return {"rows": written, "seconds": seconds, "peak_rss_mb": peak, "opened_rss_mb": opened}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, Path(args.out))))
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if not args.skip_sqlite:
            bench(str(tmp / "x.db"), args.rows, "sqlite", tmp)
        if args.skip_pg:
            return
        schema = f"cw_export_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            bench(f"{args.pg}?options=-csearch_path%3D{schema}", args.rows, "postgres", tmp)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
