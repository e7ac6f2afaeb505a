"""Step 0005 (money in integer units) on a populated ledger: time and peak memory of the upgrade.

    .venv/bin/python benchmarks/migration_bench.py [--rows 1000000] [--pg URL] [--skip-pg]

Builds a SQLite (and PostgreSQL) ledger at step 0004 with ``--rows`` priced rows of every
model and modifier (written with one raw executemany, not timed), then times the upgrade to
the newest step, next to a plain ``SELECT count(*)`` scan of the same table as the baseline.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cachewise.ledger.store import _INSERT_COLUMNS, Store, _driver_values, call_row
from cachewise.ledger.units import UNITS_COLUMNS
from tests.ledger.test_units import random_records


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def populate(url: str, rows: int) -> None:
    store = Store(url)
    store.upgrade(target=4)
    sqlite = not url.startswith("postgresql")
    template = random_records(5000, seed=5)
    now = datetime.now(UTC)
    base = [call_row(r, now) for r in template]
    keep = [i for i, name in enumerate(_INSERT_COLUMNS) if name not in UNITS_COLUMNS]
    columns = [_INSERT_COLUMNS[i] for i in keep]
    mark = "?" if sqlite else "%s"
    sql = f"INSERT INTO calls ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    converted = [_driver_values(row, sqlite) for row in base]
    with store.write() as conn:
        for start in range(0, rows, len(base)):
            chunk = []
            for j, values in enumerate(converted[: min(len(base), rows - start)]):
                row = [values[i] for i in keep]
                row[columns.index("request_id")] = f"m{start + j:09d}"
                chunk.append(tuple(row))
            conn.exec_driver_sql(sql, chunk)
    store.dispose()


def migrate(url: str, label: str) -> None:
    store = Store(url)
    with store.read() as conn:
        start = time.perf_counter()
        count = conn.exec_driver_sql("SELECT count(*), count(cost_total) FROM calls").one()[0]
        scan = time.perf_counter() - start
    rss_before = _rss_mb()
    start = time.perf_counter()
    applied = store.upgrade()
    seconds = time.perf_counter() - start
    store.dispose()
    print(
        f"{label:9} {applied}: {count} rows in {seconds:.1f} s ({count / seconds:.0f} rows/s) | "
        f"one scan of the table {scan:.2f} s | ratio {seconds / scan:.0f}x | "
        f"process max RSS {_rss_mb():.0f} MiB (was {rss_before:.0f} MiB before)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "m.db")
        populate(url, args.rows)
        migrate(url, "sqlite")
    if args.skip_pg:
        return
    schema = f"cw_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        pg_url = f"{args.pg}?options=-csearch_path%3D{schema}"
        populate(pg_url, args.rows)
        migrate(pg_url, "postgres")
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
