"""The savings report over a large ledger, on SQLite and PostgreSQL: seconds and peak memory.

    .venv/bin/python benchmarks/report_bench.py                 # 1,000,000 rows, both databases
    .venv/bin/python benchmarks/report_bench.py --rows 100000 --skip-postgres --frame
    .venv/bin/python benchmarks/report_bench.py --rows 10000000 --skip-sqlite

Rows are bulk-inserted straight into the ledger's ``calls`` table (sqlite3 ``executemany``,
PostgreSQL ``COPY``), with their 10⁻¹² units columns, and each call's tags into ``call_tags``
(one ``INSERT ... SELECT`` from ``calls.tags``). PostgreSQL rows go into a scratch schema
``cachewise_report_bench`` of db ``test`` on 127.0.0.1:5432, dropped at the end. Each figure is
measured in a fresh process (peak RSS from ``getrusage``):

* raw: one ``SELECT model, count(*), sum(input_tokens), sum(cost_total_units) FROM calls
  GROUP BY model`` (the baseline: one scan of the same database);
* report: what ``cachewise report --by model,tag:feature`` does: ``build_report`` over a
  ``LedgerSource`` (sums grouped in SQL: totals, groups, write waste, prefix families and
  their labels, unpriced calls) and ``render(report, "table")``;
* frame (``--frame``, the old path, for comparison): ``to_frame()`` + ``build_report(frame)``.

The ratios report / raw are the figures to compare between runs.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

SCHEMA = "cachewise_report_bench"
MODELS = {  # input, 5m write, read, output per MTok (docs/api-notes.md §6)
    "claude-sonnet-4-5": (Decimal(3), Decimal("3.75"), Decimal("0.30"), Decimal(15)),
    "claude-haiku-4-5": (Decimal(1), Decimal("1.25"), Decimal("0.10"), Decimal(5)),
    "claude-opus-4-5": (Decimal(5), Decimal("6.25"), Decimal("0.50"), Decimal(25)),
}
FEATURES = ("search", "chat", "summarize", "agent")
M = Decimal(1_000_000)


def rows(count: int, seed: int = 1) -> Any:
    """Ledger rows as tuples in COLUMNS order: families of 8 calls, a write then reads."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    models = list(MODELS)
    for i in range(count):
        family = i // 8
        model = models[family % len(models)]
        rin, rw, rr, rout = MODELS[model]
        write = i % 8 == 0
        fresh, prefix, out = rng.randint(100, 2000), 4000, rng.randint(50, 800)
        w, r = (prefix, 0) if write else (0, prefix)
        at = start + timedelta(seconds=family * 600 + (i % 8) * rng.choice((60, 120, 420)))
        unpriced = i % 100_000 == 99_999
        costs: list[str | None]
        if unpriced:
            costs, error = [None] * 10, "no model in table"
        else:
            c_in, c_w, c_r, c_out = fresh * rin / M, w * rw / M, r * rr / M, out * rout / M
            total = c_in + c_w + c_r + c_out
            no_cache = (fresh + w + r) * rin / M + c_out
            zero = Decimal(0)
            parts = (c_in, c_w, zero, c_r, c_out, zero, zero, total, no_cache, no_cache - total)
            costs = [str(v) for v in parts]
            error = None
        units = [None] * 10 if unpriced else [int(v.scaleb(12)) for v in parts]
        stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")
        tags = json.dumps({"feature": FEATURES[family % 4], "user": f"u{family % 50}"})
        yield (
            f"req_{i:08d}", stamp, model, stamp, "ok", "messages",
            fresh, w + 0, r, w, 0, out, 0, 0, "0",
            False, False, False, f"p{family:07d}", tags, None if unpriced else "bench", *costs, error,
            0, *units,
        )  # fmt: skip


COST_NAMES = (
    "cost_input", "cost_cache_write_5m", "cost_cache_write_1h", "cost_cache_read", "cost_output",
    "cost_web_search", "cost_code_execution", "cost_total", "cost_no_cache", "savings",
)  # fmt: skip
COLUMNS = (
    "request_id", "recorded_at", "model", "started_at", "status", "endpoint",
    "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens", "output_tokens", "web_search_requests", "web_fetch_requests",
    "code_execution_hours", "ttl_split_missing", "incomplete", "planned", "prefix_hash", "tags",
    "price_table_version", "cost_input", "cost_cache_write_5m", "cost_cache_write_1h", "cost_cache_read",
    "cost_output", "cost_web_search", "cost_code_execution", "cost_total", "cost_no_cache", "savings",
    "cost_error", "code_execution_hours_units", *(f"{name}_units" for name in COST_NAMES),
)  # fmt: skip
_TAGS = "INSERT INTO call_tags (call_id, key, value) SELECT calls.id, j.key, j.value FROM calls, "
TAGS_SQL = {
    "sqlite": _TAGS + "json_each(calls.tags) j",
    "postgresql": _TAGS + "jsonb_each_text(calls.tags) j",
}


def create(url: str, spool: Path) -> None:
    from cachewise.ledger import Ledger
    from cachewise.ledger.schema import calls

    Ledger(url, spool_dir=spool).close()  # runs the migrations
    missing = set(COLUMNS) - set(calls.c.keys())
    if missing:
        raise SystemExit(f"the ledger schema changed; update COLUMNS in {__file__}: {sorted(missing)}")


def fill_sqlite(path: Path, count: int, spool: Path) -> float:
    import sqlite3

    create(str(path), spool)
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    marks = ",".join("?" * len(COLUMNS))
    batch: list[tuple[Any, ...]] = []
    for row in rows(count):
        batch.append(row)
        if len(batch) == 50_000:
            conn.executemany(f"INSERT INTO calls ({','.join(COLUMNS)}) VALUES ({marks})", batch)
            batch.clear()
    if batch:
        conn.executemany(f"INSERT INTO calls ({','.join(COLUMNS)}) VALUES ({marks})", batch)
    conn.execute(TAGS_SQL["sqlite"])
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def pg_url(base: str) -> str:
    return f"{base}?options=-csearch_path%3D{SCHEMA}"


def fill_postgres(base: str, count: int, spool: Path) -> float:
    import psycopg

    dsn = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
    create(pg_url(base), spool)
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET search_path TO {SCHEMA}")
        with conn.cursor().copy(f"COPY calls ({','.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows(count):
                copy.write_row(row)
        conn.execute(TAGS_SQL["postgresql"])
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {SCHEMA}")
        conn.execute("VACUUM ANALYZE calls")
        conn.execute("VACUUM ANALYZE call_tags")
    return time.perf_counter() - started


def drop_postgres(base: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


RAW = "SELECT model, count(*), sum(input_tokens), sum(cost_total_units) FROM calls GROUP BY model"


def measure(mode: str, url: str) -> dict[str, Any]:
    """Run in a child process: time one mode, report peak RSS."""
    from sqlalchemy import create_engine, text

    from cachewise.ledger import Ledger

    by = ["model", "tag:feature"]
    started = time.perf_counter()
    out: dict[str, Any] = {}
    if mode == "raw":  # the plain driver and one query: no ledger, no pandas
        engine = create_engine(url if "://" in url else f"sqlite:///{url}")
        with engine.connect() as conn:
            out["groups"] = len(conn.execute(text(RAW)).all())
        engine.dispose()
        out["seconds"] = time.perf_counter() - started
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out
    from cachewise.reports import build_report, render
    from cachewise.reports.source import LedgerSource

    with Ledger(url, spool_dir=tempfile.mkdtemp(), create=False) as ledger:
        if mode == "report":
            with LedgerSource.open(url) as source:
                report = build_report(source, by)
                out["chars"] = len(render(report, "table"))
        else:
            report = build_report(ledger.to_frame(), by)
    out["calls"] = int(report.totals["calls"])
    out["total"] = str(report.totals["cost_total"])
    out["savings"] = str(report.totals["savings"])
    out["wasted"] = int(report.totals["wasted_write_tokens"])
    out["unpriced"] = int(report.totals["unpriced_calls"])
    out["seconds"] = time.perf_counter() - started
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def child(mode: str, url: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", mode, "--url", url],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--frame", action="store_true", help="also time the old to_frame path")
    parser.add_argument("--measure", choices=["raw", "report", "frame"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.url)))
        return
    work = Path(tempfile.mkdtemp(prefix="cachewise-bench-"))
    print(f"rows: {args.rows:,}")
    try:
        for name in ("sqlite", "postgresql"):
            if (name == "sqlite" and args.skip_sqlite) or (name == "postgresql" and args.skip_postgres):
                continue
            if name == "sqlite":
                url = str(work / "bench.db")
                fill = fill_sqlite(work / "bench.db", args.rows, work / "spool")
            else:
                url = pg_url(args.pg)
                fill = fill_postgres(args.pg, args.rows, work / "spool")
            raw = child("raw", url)
            rep = child("report", url)
            print(f"\n{name}: bulk insert {fill:.1f}s")
            print(f"  raw GROUP BY model scan {raw['seconds']:7.2f}s  peak RSS {raw['peak_rss_mb']:6.0f} MB")
            print(f"  savings report          {rep['seconds']:7.2f}s  peak RSS {rep['peak_rss_mb']:6.0f} MB"
                  f"  ({rep['seconds'] / args.rows * 1e6:.2f} us/row)")  # fmt: skip
            print(f"  ratio report/raw        time x{rep['seconds'] / raw['seconds']:.2f}"
                  f"  memory x{rep['peak_rss_mb'] / raw['peak_rss_mb']:.2f}")  # fmt: skip
            print(f"  check: {rep['calls']:,} calls, total ${rep['total']}, savings ${rep['savings']}, "
                  f"wasted {rep['wasted']:,} tok, unpriced {rep['unpriced']}")  # fmt: skip
            if args.frame:
                old = child("frame", url)
                same = Decimal(old["total"]) == Decimal(rep["total"]) and old["wasted"] == rep["wasted"]
                print(f"  old to_frame report     {old['seconds']:7.2f}s"
                      f"  peak RSS {old['peak_rss_mb']:6.0f} MB  (same totals: {same})")  # fmt: skip
            if name == "sqlite":
                (work / "bench.db").unlink()
    finally:
        if not args.skip_postgres:
            drop_postgres(args.pg)


if __name__ == "__main__":
    main()
