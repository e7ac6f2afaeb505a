"""The ledger side of ``cachewise reconcile``: the grouped bucket query over a large SQLite ledger.

    .venv/bin/python benchmarks/reconcile_bench.py                 # 200,000 rows
    .venv/bin/python benchmarks/reconcile_bench.py --rows 1000000

Rows (30 days, 3 models, a ``workspace_id`` tag on each) are bulk-inserted into ``calls`` and
``call_tags`` with their integer cost units, as the ledger writes them. Timed, best of 3:

* baseline: ``Ledger.totals(since, until)``: one aggregate over the same window (any reading pays it);
* ``read_buckets`` at 1d, 1h and 1m, per model, and at 1d per model x workspace tag.

The ratios bucket query / baseline are the figures to compare between runs.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from cachewise.ledger import Ledger
from cachewise.ledger.buckets import read_buckets
from cachewise.ledger.units import to_units

START = datetime(2026, 10, 1, tzinfo=UTC)
MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-5")
COLUMNS = (
    "request_id", "recorded_at", "model", "started_at", "status", "endpoint", "input_tokens",
    "cache_creation_input_tokens", "cache_read_input_tokens", "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens", "output_tokens", "tags", "cost_total", "cost_total_units",
    "code_execution_hours_units",
)  # fmt: skip


def rows(count: int) -> Iterator[tuple[Any, ...]]:
    step = timedelta(days=30) / count
    for i in range(count):
        at = (START + step * i).strftime("%Y-%m-%d %H:%M:%S.%f")
        cost = Decimal(100 + i % 977) * Decimal("0.000003")
        workspace = f"wrkspc_{i % 4}"
        yield (
            f"req_{i:08d}", at, MODELS[i % 3], at, "ok", "messages", 100 + i % 50, 2000 * (i % 2), 4000,
            2000 * (i % 2), 0, 200, json.dumps({"workspace_id": workspace}), str(cost), to_units(cost), 0,
        )  # fmt: skip


def fill(path: Path, count: int) -> float:
    Ledger(path, spool_dir=path.parent / "spool", flush_on_signal=False).close()
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    marks = ",".join("?" * len(COLUMNS))
    conn.executemany(f"INSERT INTO calls ({','.join(COLUMNS)}) VALUES ({marks})", rows(count))
    conn.execute(
        "INSERT INTO call_tags (call_id, key, value) "
        "SELECT id, 'workspace_id', json_extract(tags, '$.workspace_id') FROM calls"
    )
    conn.commit()
    conn.close()
    return time.perf_counter() - started


def best(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cachewise-reconcile-bench-") as tmp:
        path = Path(tmp) / "ledger.db"
        print(f"filled {args.rows:,} rows in {fill(path, args.rows):.1f} s")
        since, until = START, START + timedelta(days=30)
        with Ledger(path, create=False, upgrade=False, flush_on_signal=False) as ledger:
            baseline = best(lambda: ledger.totals(since, until))
            print(f"{'query':<28} {'keys':>7} {'seconds':>8} {'x baseline':>10}")
            print(f"{'baseline: Ledger.totals':<28} {1:>7} {baseline:>8.3f} {1:>10.2f}")
            cases: list[tuple[str, dict[str, Any]]] = [
                ("read_buckets 1d", {"width": "1d"}),
                ("read_buckets 1h", {"width": "1h"}),
                ("read_buckets 1m", {"width": "1m"}),
                ("read_buckets 1d x workspace", {"width": "1d", "group_tag": "workspace_id"}),
            ]
            for name, options in cases:
                keys = len(read_buckets(ledger, since=since, until=until, **options))
                seconds = best(lambda o=options: read_buckets(ledger, since=since, until=until, **o))
                print(f"{name:<28} {keys:>7} {seconds:>8.3f} {seconds / baseline:>10.2f}")


if __name__ == "__main__":
    main()
