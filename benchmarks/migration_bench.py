"""Schema upgrades of a populated ledger: time and peak memory, from step 4 (the units
conversion, step 0005), from the step before the newest (the newest step alone: step 0010 builds
``ix_calls_prefix_hash_started_at``; rows built below step 14 name their price table by a
machine path, so step 0014 rewrites every row's rates) and from the current step (what opening
a ledger already up to date costs).

    .venv/bin/python benchmarks/migration_bench.py [--rows 1000000] [--from 4 previous current]
        [--pg URL] [--skip-pg]

For each starting step, builds a SQLite (and PostgreSQL) ledger at that step with ``--rows``
priced rows of every model and modifier (one raw executemany, not timed), then times the
upgrade to the newest step in a fresh child process, whose peak RSS is the upgrade's own,
next to a plain ``SELECT count(*)`` scan of the same table (the baseline) and the child's
RSS right after it opened the database (the floor).
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
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cachewise.ledger.migrations import latest_version
from cachewise.ledger.store import _INSERT_COLUMNS, Store, _driver_values, call_row
from tests.ledger.test_units import random_records


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _columns(store: Store) -> set[str]:
    with store.read() as conn:
        if store.dialect == "sqlite":
            return {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(calls)")}
        return {
            row[0]
            for row in conn.exec_driver_sql(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'calls' AND table_schema = current_schema()"
            )
        }


#: How applied rates named the shipped table before step 0014 (a path of the machine that priced).
OLD_SOURCE = "/opt/app/.venv/lib/python3.11/site-packages/cachewise/_data/pricing/anthropic.yaml"


def populate(url: str, rows: int, step: int) -> None:
    store = Store(url)
    store.upgrade(target=step)
    present = _columns(store)
    sqlite = not url.startswith("postgresql")
    template = random_records(5000, seed=5)
    if step < 14:  # every row as written before step 0014: the step rewrites each one (its worst case)
        template = [replace(r, rates={**r.rates, "source": OLD_SOURCE}) if r.rates else r for r in template]
    now = datetime.now(UTC)
    base = [call_row(r, now) for r in template]
    keep = [i for i, name in enumerate(_INSERT_COLUMNS) if name in present]
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


def child(url: str) -> None:
    """Run in a fresh process: open, count, upgrade; print the figures as JSON."""
    store = Store(url)
    with store.read() as conn:
        start = time.perf_counter()
        count = conn.exec_driver_sql("SELECT count(*), count(cost_total) FROM calls").one()[0]
        scan = time.perf_counter() - start
    floor = _rss_mb()
    start = time.perf_counter()
    applied = store.upgrade()
    seconds = time.perf_counter() - start
    store.dispose()
    print(json.dumps({"count": count, "scan": scan, "seconds": seconds, "applied": applied, "floor": floor}))


def migrate(url: str, label: str, step: int) -> None:
    done = subprocess.run(
        [sys.executable, __file__, "--child", url], check=True, capture_output=True, text=True
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    count, scan, seconds = figures["count"], figures["scan"], figures["seconds"]
    print(
        f"{label:9} from step {step} to {latest_version()} {figures['applied'] or 'nothing to apply'}: "
        f"{count} rows in {seconds:.2f} s ({count / seconds:.0f} rows/s) | "
        f"one scan of the table {scan:.2f} s | ratio {seconds / scan:.1f}x | "
        f"peak RSS of the upgrading process {peak:.0f} MiB (after opening: {figures['floor']:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--from", dest="steps", nargs="*", default=["4", "previous", "current"])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    # RUSAGE_CHILDREN keeps the largest child: run the cheaper cases first so each figure is its own.
    named = {"current": latest_version(), "previous": latest_version() - 1}
    steps = sorted({named[s] if s in named else int(s) for s in args.steps})[::-1]
    for step in steps:
        with tempfile.TemporaryDirectory() as tmp:
            url = str(Path(tmp) / "m.db")
            populate(url, args.rows, step)
            migrate(url, "sqlite", step)
        if args.skip_pg:
            continue
        schema = f"cw_mig_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            pg_url = f"{args.pg}?options=-csearch_path%3D{schema}"
            populate(pg_url, args.rows, step)
            migrate(pg_url, "postgres", step)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
