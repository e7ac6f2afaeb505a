"""Ledger figures: batched vs one-row-per-transaction inserts, record() latency, to_frame at 1M rows,
and ``Ledger.record`` end to end against a raw ``executemany`` of the same rows (both databases).

    .venv/bin/python benchmarks/ledger_bench.py [--rows 20000] [--frame-rows 1000000] [--e2e-rows 100000]
        [--pg URL] [--skip inserts record frame end-to-end index-cost rollups upkeep-cpu parts]
        [--full-write-indexes] [--parts sqlite postgres] [--parts-traffic live random]

``parts``: live traffic through ``Store``'s write path part by part (building the rows, the insert of
the calls, the rollups' upkeep, the tags, the commit), thread CPU and wall time a row, next to a raw
``executemany`` of the same rows. Thread CPU is the figure that holds up on a loaded machine; to
compare two versions, run the same script against each checkout back to back.

``rollups``: the cost of keeping the rollups on write (ledger/rollups.py), ``Ledger.record`` end to
end with their upkeep and without it (the upkeep replaced by a no-op in this process), interleaved,
on two shapes of traffic: the random records of the other figures (times spread over 500 days, so
nearly every call is a rollup row of its own: the worst case) and live traffic (calls 5 ms apart
in prefix families of 8, a cache write then reads, 3 models, 4 features x 50 users).

``end-to-end`` also prints, on Linux, the CPU a row of the ledger's writer thread and of its I/O
thread (``/proc``). ``--parts-traffic random`` runs ``parts`` on the end to end's random records as well.

Every figure is printed next to a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import UTC, datetime, timedelta

from cachewise.ledger import CallRecord, Ledger
from cachewise.ledger.store import (
    _INSERT_COLUMNS,
    _INSERT_SQL_COLUMNS,
    Store,
    _driver_values,
    call_row,
    record_values,
)
from tests.ledger.conftest import make_record
from tests.ledger.test_units import random_records


def _pg_schema(admin: str) -> tuple[str, str]:
    schema = f"cw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{admin}?options=-csearch_path%3D{schema}", schema


def _drop(admin: str, schema: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def inserts(url: str, rows: int, label: str) -> None:
    records = [make_record(i) for i in range(rows)]
    store = Store(url)
    store.upgrade()
    naive_n = max(rows // 10, 200)
    start = time.perf_counter()
    for rec in records[:naive_n]:
        store.insert([rec])  # one row per transaction
    naive = naive_n / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(naive_n, rows, 500):
        store.insert(records[i : i + 500])
    batched = (rows - naive_n) / (time.perf_counter() - start)
    store.dispose()
    ratio = batched / naive
    print(
        f"{label:9} inserts: batched {batched:8.0f} rows/s | 1 row per tx {naive:6.0f} rows/s | x{ratio:.1f}"
    )


def record_latency(url: str, n: int) -> None:
    records = [make_record(i) for i in range(n)]
    led = Ledger(url, spool_dir=tempfile.mkdtemp(), flush_interval=0.05)

    def noop(_: object) -> None:
        return None

    samples_noop, samples_rec = [], []
    for rec in records:
        t = time.perf_counter_ns()
        noop(rec)
        samples_noop.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns()
        led.record(rec)
        samples_rec.append(time.perf_counter_ns() - t)
    led.flush()
    led.close()
    med_noop = statistics.median(samples_noop) / 1000
    med = statistics.median(samples_rec) / 1000
    p99 = statistics.quantiles(samples_rec, n=100)[98] / 1000
    print(f"record(): median {med:.2f} µs, p99 {p99:.2f} µs | no-op call median {med_noop:.2f} µs")


def frame(url: str, rows: int) -> None:
    store = Store(url)
    store.upgrade()
    template = random_records(5000, seed=3)  # priced by the shipped table: every model and modifier
    for i in range(0, rows, 5000):
        store.insert(
            [
                replace(rec, request_id=f"f{i + j:09d}")
                for j, rec in enumerate(template[: min(5000, rows - i)])
            ]
        )
    store.dispose()
    led = Ledger(url, spool_dir=tempfile.mkdtemp())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    df = led.to_frame(money="arrow")  # timed without tracemalloc, which would slow every allocation
    seconds = time.perf_counter() - start
    del df
    tracemalloc.start()
    df = led.to_frame(money="arrow")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    start = time.perf_counter()
    led.totals()
    totals_s = time.perf_counter() - start
    del df
    start = time.perf_counter()
    chunks = sum(len(part) for part in led.iter_frames(chunk_rows=100_000, money="arrow"))
    chunked_s = time.perf_counter() - start
    with led._store.read() as conn:
        start = time.perf_counter()
        conn.exec_driver_sql("SELECT model, count(*), sum(cost_total_units) FROM calls GROUP BY model").all()
        scan_s = time.perf_counter() - start
    df = led.to_frame(money="arrow")
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from cachewise.ledger.export import export

    out = Path(tempfile.mkdtemp()) / "calls.parquet"
    start = time.perf_counter()
    with out.open("wb") as handle:
        exported = export(led, "parquet", handle)
    export_s = time.perf_counter() - start
    table = pq.read_table(out, columns=["request_id", "cost_total", "input_tokens"])
    same = (
        table.num_rows == len(df)
        and table.column("request_id").to_pylist() == list(df["request_id"])
        and pc.sum(table.column("cost_total")).as_py() == led.totals().cost_total
        and pc.sum(table.column("input_tokens")).as_py() == led.totals().input_tokens
    )
    led.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    deep = df.memory_usage(deep=True).sum() / 2**20
    print(
        f"to_frame: {len(df)} rows in {seconds:.1f} s ({len(df) / seconds:.0f} rows/s), "
        f"traced peak {peak / 2**20:.0f} MiB, frame {deep:.0f} MiB, "
        f"process max RSS {rss:.0f} MiB (was {rss_before:.0f} MiB before reading); "
        f"totals() {totals_s:.2f} s vs one raw GROUP BY scan {scan_s:.2f} s (x{totals_s / scan_s:.1f}); "
        f"iter_frames {chunks} rows in {chunked_s:.1f} s; "
        f"parquet export {exported} rows in {export_s:.1f} s ({out.stat().st_size / 2**20:.0f} MiB), "
        f"read back equal to the ledger: {same}"
    )


def _raw_values(records: list[CallRecord], sqlite: bool) -> list[tuple[Any, ...]]:
    """The driver values of ``records`` (under fresh request ids), converted before any clock starts."""
    now = datetime.now(UTC)
    return [
        tuple(_driver_values(call_row(r, now) | {"request_id": "raw-" + r.request_id}, sqlite))
        for r in records
    ]


def _raw_executemany(url: str, values: list[tuple[Any, ...]], sqlite: bool) -> float:
    """Seconds for one ``executemany`` of ``values`` into ``calls`` in one transaction."""
    mark = "?" if sqlite else "%s"
    marks = ", ".join([mark] * len(_INSERT_COLUMNS))
    sql = f"INSERT INTO calls ({_INSERT_SQL_COLUMNS}) VALUES ({marks}) ON CONFLICT (request_id) DO NOTHING"
    store = Store(url)
    try:
        with store.write() as conn:
            start = time.perf_counter()
            conn.exec_driver_sql(sql, values)
        return time.perf_counter() - start
    finally:
        store.dispose()


def _raw_copy(pg_url: str, values: list[tuple[Any, ...]]) -> float:
    """Seconds for one raw ``COPY calls FROM STDIN`` of ``values`` (ids from the column default)."""
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        start = time.perf_counter()
        with cursor.copy(f"COPY calls ({_INSERT_SQL_COLUMNS}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - start


#: Step 0012 undone on a current schema: the prefix-hash and batch indexes as full indexes again.
FULL_WRITE_INDEXES = (
    "DROP INDEX ix_calls_prefix_hash_started_at",
    "CREATE INDEX ix_calls_prefix_hash_started_at ON calls (prefix_hash, started_at, id)",
    "DROP INDEX ix_calls_batch_id_custom_id",
    "CREATE INDEX ix_calls_batch_id_custom_id ON calls (batch_id, custom_id)",
)


def end_to_end(url: str, records: list[CallRecord], label: str, full_indexes: bool = False) -> None:
    """``Ledger.record`` x rows then ``flush()`` (durable), timed from the first record; the time
    inside ``record()`` on the caller's thread; raw inserts of the same rows as the baseline.

    ``full_indexes``: the current schema with step 0012's partial indexes made full again (what
    0012 saves on the write path; every other step, the rollups included, as today)."""
    rows = len(records)
    sqlite = not url.startswith("postgresql")
    if full_indexes:
        store = Store(url)
        store.upgrade()
        with store.engine.begin() as conn:
            for statement in FULL_WRITE_INDEXES:
                conn.exec_driver_sql(statement)
        store.dispose()
        label = f"{label}-full"
    led = Ledger(url, spool_dir=tempfile.mkdtemp(), flush_on_signal=False)
    caller: list[int] = []
    clock = time.perf_counter_ns
    threads_before = _thread_cpu()
    cpu = time.process_time()
    start = time.perf_counter()
    for rec in records:
        t = clock()
        led.record(rec)
        caller.append(clock() - t)
    led.flush()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    by_thread = _ledger_threads(led, threads_before, _thread_cpu(), rows)
    durable = led.stats.durable
    led.close()
    assert durable == rows, (durable, rows)
    through = rows / seconds
    values = _raw_values(records, sqlite)
    raw = rows / _raw_executemany(url, values, sqlite)
    baselines = f"raw executemany {raw:7.0f} rows/s (x{through / raw:.2f})"
    if not sqlite:
        copied = rows / _raw_copy(url, [(f"copy-{v[0]}", *v[1:]) for v in values])
        baselines += f" | raw COPY {copied:7.0f} rows/s (x{through / copied:.2f})"
    mean = sum(caller) / rows / 1000
    median = statistics.median(caller) / 1000
    print(
        f"{label:9} {rows} rows: Ledger.record+flush {through:7.0f} rows/s "
        f"(caller {mean:.2f} µs/record mean, {median:.2f} median; "
        f"process CPU {cpu / rows * 1e6:.0f} µs/row{by_thread}) | {baselines}"
    )


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process (Linux ``/proc``; empty elsewhere)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for task in tasks.iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def _ledger_threads(led: Ledger, before: dict[int, float], after: dict[int, float], rows: int) -> str:
    """The CPU a row of the ledger's writer thread and of its store's I/O thread, as ``; writer
    X, io Y µs/row`` (what ``process CPU`` splits into; clock ticks, so ±0.2 µs at 50k rows)."""
    writer = led._writer._thread.native_id
    io = led._store._io
    io_ids = [t.native_id for t in getattr(io, "_threads", ())] if io is not None else []
    if not after or writer is None:
        return ""

    def spent(tid: int | None) -> float:
        return 0.0 if tid is None else (after.get(tid, 0.0) - before.get(tid, 0.0)) / rows * 1e6

    return f"; writer {spent(writer):.1f}, io {sum(spent(t) for t in io_ids):.1f} µs/row"


def _scratch_sqlite(directory: Path, step: int | None = None) -> str:
    path = directory / f"scratch-{uuid.uuid4().hex[:8]}.db"
    store = Store(str(path))
    store.upgrade(target=step)
    store.dispose()
    return str(path)


Rows = list[tuple[Any, ...]]


def _timed_insert(path: str, values: Rows, tags: Rows, ddl: list[str]) -> float:
    """Thread CPU seconds of one ``executemany`` of ``values`` (ids given) and ``tags`` after ``ddl``."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("PRAGMA foreign_keys = ON")
        for statement in ddl:
            con.execute(statement)
        marks = ", ".join(["?"] * (len(_INSERT_COLUMNS) + 1))
        start = time.thread_time()
        con.execute("BEGIN IMMEDIATE")
        con.executemany(f"INSERT INTO calls (id, {_INSERT_SQL_COLUMNS}) VALUES ({marks})", values)
        con.executemany("INSERT INTO call_tags (call_id, key, value) VALUES (?, ?, ?)", tags)
        con.execute("COMMIT")
        return time.thread_time() - start
    finally:
        con.close()


def index_cost(records: list[CallRecord], directory: Path, repeats: int = 3) -> None:
    """SQLite: the CPU one raw ``executemany`` of the rows (and their tags) takes per row, with the
    current schema, with each index dropped in a scratch database, and at step 10 (before 0012).
    Thread CPU time, the least of ``repeats`` runs: less sensitive to other load than wall time."""
    rows = len(records)
    now = datetime.now(UTC)
    built = [record_values(r, now, True) for r in records]
    values = [(i, *v) for i, (v, _tags) in enumerate(built, 1)]
    tags = [(i, k, v) for i, (_v, t) in enumerate(built, 1) for k, v in t.items()]
    con = sqlite3.connect(_scratch_sqlite(directory))
    indexes = [
        name
        for (name,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('calls', 'call_tags') ORDER BY name"
        )
    ]
    con.close()

    def best(step: int | None, ddl: list[str]) -> float:
        return min(_timed_insert(_scratch_sqlite(directory, step), values, tags, ddl) for _ in range(repeats))

    full = best(None, [])
    print(f"index cost, sqlite, {rows} rows, raw executemany (+tags), thread CPU, least of {repeats}:")
    print(f"  current schema             {full / rows * 1e6:6.1f} µs/row")
    print(f"  at step 10 (before 0012)   {best(10, []) / rows * 1e6:6.1f} µs/row")
    for name in indexes:
        cost = full - best(None, [f"DROP INDEX {name}"])
        print(f"  {name:32} {cost / rows * 1e6:6.1f} µs/row ({cost / full:4.0%})")
    cost = full - best(None, [f"DROP INDEX {name}" for name in indexes])
    print(f"  {'all of them':32} {cost / rows * 1e6:6.1f} µs/row ({cost / full:4.0%})")


def live_records(count: int) -> list[CallRecord]:
    """Live traffic: calls 5 ms apart, families of 8 (a 5-minute write, then reads), tagged."""
    from cachewise.pricing import PriceBook
    from cachewise.usage import Usage

    book = PriceBook.default()
    models = [e.id for e in book.models() if e.prices][:3]
    start = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    out = []
    for i in range(count):
        family, position = divmod(i, 8)
        usage = Usage(
            input_tokens=100 + i % 900,
            ephemeral_5m_input_tokens=4000 if position == 0 else 0,
            cache_read_input_tokens=0 if position == 0 else 4000,
            output_tokens=50 + i % 700,
        )
        out.append(
            CallRecord.priced(
                usage=usage,
                model=models[family % len(models)],
                book=book,
                started_at=start + timedelta(milliseconds=5 * i),
                request_id=f"live_{i:08d}",
                prefix_hash=f"p{family % 5000:06d}",
                tags={
                    "feature": ("search", "chat", "summarize", "agent")[family % 4],
                    "user": f"u{family % 50}",
                },
            )
        )
    return out


def _timed_e2e(url: str, records: list[CallRecord], *, upkeep: bool) -> float:
    """Rows per second of ``Ledger.record`` x rows + ``flush()``, with or without the rollups' upkeep."""
    from cachewise.ledger import rollups, store

    kept = rollups.record_inserted
    if not upkeep:
        store.rollups.record_inserted = lambda *_args: None  # type: ignore[assignment]
    try:
        led = Ledger(url, spool_dir=tempfile.mkdtemp(), flush_on_signal=False)
        start = time.perf_counter()
        for rec in records:
            led.record(rec)
        led.flush()
        seconds = time.perf_counter() - start
        led.close()
    finally:
        store.rollups.record_inserted = kept  # type: ignore[assignment]
    return len(records) / seconds


def rollup_upkeep(tmp: Path, pg_admin: str, rows: int, runs: int = 2) -> None:
    """End-to-end rows/s with and without the rollups' upkeep, same records, interleaved."""
    shapes = {"random": random_records(rows, seed=7), "live": live_records(rows)}
    for name, records in shapes.items():
        for label in ("sqlite", "postgres"):
            best: dict[bool, float] = {}
            for run in range(runs):
                for upkeep in (False, True):
                    if label == "sqlite":
                        url = str(tmp / f"roll-{name}-{run}-{upkeep}.db")
                    else:
                        url, schema = _pg_schema(pg_admin)
                    try:
                        found = _timed_e2e(url, records, upkeep=upkeep)
                    finally:
                        if label == "postgres":
                            _drop(pg_admin, schema)
                    best[upkeep] = max(best.get(upkeep, 0.0), found)
            print(
                f"rollups  {label:9} {name:6} {rows} rows: record+flush without upkeep "
                f"{best[False]:7.0f} rows/s, with {best[True]:7.0f} rows/s (x{best[True] / best[False]:.2f})"
            )


def upkeep_cpu(directory: Path, pg_url: str, rows: int, repeats: int = 5) -> None:
    """Thread CPU per row of the rollups' upkeep alone (``rollups.record_inserted`` on rows already
    built, chunks of 1,000 as the writer hands them over, each run rolled back), next to one raw
    ``executemany`` of the same rows into ``calls`` (the baseline, same run); least of ``repeats``.
    The random records: nearly every call is a rollup row of its own (the worst case)."""
    from cachewise.ledger import rollups
    from cachewise.ledger.types import format_utc

    records = random_records(rows, seed=7)
    for label, url in (("sqlite", str(directory / "upkeep.db")), ("postgres", pg_url)):
        store = Store(url)
        store.upgrade()
        sqlite = store.dialect == "sqlite"
        now = datetime.now(UTC)
        built = [record_values(r, format_utc(now) if sqlite else now, sqlite) for r in records]
        ids = {values[0]: i for i, (values, _tags) in enumerate(built, 1)}
        mark = "?" if sqlite else "%s"
        marks = ", ".join([mark] * (len(_INSERT_COLUMNS) + 1))
        insert = f"INSERT INTO calls (id, {_INSERT_SQL_COLUMNS}) VALUES ({marks})"
        best = {"upkeep": float("inf"), "raw": float("inf")}
        for _ in range(repeats):
            for what in best:
                with store.engine.connect() as conn:
                    transaction = conn.begin()
                    start = time.thread_time()
                    if what == "raw":
                        conn.exec_driver_sql(insert, [(ids[v[0]], *v) for v, _tags in built])
                    else:
                        for i in range(0, rows, 1000):
                            part = built[i : i + 1000]
                            rollups.record_inserted(conn, part, {v[0]: ids[v[0]] for v, _tags in part})
                    best[what] = min(best[what], time.thread_time() - start)
                    transaction.rollback()
        store.dispose()
        upkeep, raw = (best[k] / rows * 1e6 for k in ("upkeep", "raw"))
        print(
            f"upkeep   {label:9} {rows} rows: rollups.record_inserted {upkeep:5.1f} µs/row thread CPU | "
            f"raw executemany into calls {raw:5.1f} µs/row (x{upkeep / raw:.2f}); least of {repeats}"
        )


def _parts_once(url: str, records: list[CallRecord]) -> dict[str, tuple[float, float]]:
    """One pass of the write path's parts over ``records`` (chunks of 1,000 in one transaction,
    as the writer hands them over): thread CPU and wall seconds of each part."""
    from cachewise.ledger import rollups
    from cachewise.ledger import store as store_module
    from cachewise.ledger.types import format_utc

    target = Store(url)
    target.upgrade()
    sqlite = target.dialect == "sqlite"
    spent: dict[str, list[float]] = {
        name: [0.0, 0.0] for name in ("build", "insert", "upkeep", "tags", "commit")
    }

    def timed(name: str, function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name][0] += time.thread_time() - cpu
                spent[name][1] += time.perf_counter() - wall

        return run

    kept = rollups.record_inserted
    store_module.rollups.record_inserted = timed("upkeep", kept)  # type: ignore[assignment]
    target._insert_rows = timed("insert", target._insert_rows)  # type: ignore[method-assign]
    write_rows = timed("tags", target._write_rows)  # the rest of _write_rows: the tags
    try:
        memo = target._memo
        conn_cm = target.write()
        conn = conn_cm.__enter__()
        at: Any = format_utc(datetime.now(UTC)) if sqlite else datetime.now(UTC)
        for start in range(0, len(records), 1000):
            t_cpu, t_wall = time.thread_time(), time.perf_counter()
            rows = [record_values(r, at, sqlite, memo) for r in records[start : start + 1000]]
            spent["build"][0] += time.thread_time() - t_cpu
            spent["build"][1] += time.perf_counter() - t_wall
            write_rows(conn, rows, bulk=True)
        t_cpu, t_wall = time.thread_time(), time.perf_counter()
        conn_cm.__exit__(None, None, None)
        spent["commit"][0] += time.thread_time() - t_cpu
        spent["commit"][1] += time.perf_counter() - t_wall
    finally:
        store_module.rollups.record_inserted = kept  # type: ignore[assignment]
        target.dispose()
    for name in ("insert", "upkeep"):
        spent["tags"][0] -= spent[name][0]
        spent["tags"][1] -= spent[name][1]
    return {name: (cpu, wall) for name, (cpu, wall) in spent.items()}


def parts(
    directory: Path,
    pg_admin: str,
    rows: int,
    runs: int = 3,
    labels: tuple[str, ...] = ("sqlite", "postgres"),
    traffic: str = "live",
) -> None:
    """Live traffic (or the end to end's random records, ``traffic="random"``) through ``Store``'s
    write path, part by part (thread CPU and wall µs a row, the least of ``runs`` passes, each into
    a fresh database), next to a raw ``executemany`` of the same rows measured in the same run."""
    records = live_records(rows) if traffic == "live" else random_records(rows, seed=7)
    for label in labels:
        best: dict[str, list[float]] = {}
        raw = float("inf")
        for run in range(runs):
            if label == "sqlite":
                url = str(directory / f"parts-{run}.db")
            else:
                url, schema = _pg_schema(pg_admin)
            try:
                found = _parts_once(url, records)
                raw = min(
                    raw, _raw_executemany(url, _raw_values(records, label == "sqlite"), label == "sqlite")
                )
            finally:
                if label == "postgres":
                    _drop(pg_admin, schema)
            for name, (cpu, wall) in found.items():
                got = best.setdefault(name, [float("inf"), float("inf")])
                got[0], got[1] = min(got[0], cpu), min(got[1], wall)
        total_cpu = sum(cpu for cpu, _wall in best.values())
        total_wall = sum(wall for _cpu, wall in best.values())
        shown = ", ".join(f"{n} {c / rows * 1e6:.1f}/{w / rows * 1e6:.1f}" for n, (c, w) in best.items())
        print(
            f"parts    {label:9} {traffic} {rows} rows, µs a row thread CPU/wall (least of {runs}): {shown}; "
            f"sum {total_cpu / rows * 1e6:.1f}/{total_wall / rows * 1e6:.1f} "
            f"({rows / total_wall:.0f} rows/s one thread) | raw executemany "
            f"{raw / rows * 1e6:.1f} µs/row wall (x{total_wall / raw:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--frame-rows", type=int, default=1_000_000)
    parser.add_argument("--e2e-rows", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["inserts", "record", "frame", "end-to-end", "index-cost", "rollups", "upkeep-cpu", "parts"],
    )
    parser.add_argument(
        "--parts",
        nargs="*",
        default=["sqlite", "postgres"],
        choices=["sqlite", "postgres"],
        help="the databases of the parts figure",
    )
    parser.add_argument(
        "--parts-traffic",
        nargs="*",
        default=["live"],
        choices=["live", "random"],
        help="the traffic of the parts figure: live (families, few rollup rows) or random (the end to end's)",
    )
    parser.add_argument(
        "--full-write-indexes",
        action="store_true",
        help="also run end to end with step 0012's partial indexes made full again (what 0012 saves)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg_url, schema = _pg_schema(args.pg)
        try:
            if "end-to-end" not in args.skip:
                records = random_records(args.e2e_rows, seed=7)  # built (and priced) before timing
                for full in [True, False] if args.full_write_indexes else [False]:
                    end_to_end(str(Path(tmp) / f"e{full}.db"), records, "sqlite", full)
                    _drop(args.pg, schema)
                    pg_url, schema = _pg_schema(args.pg)
                    end_to_end(pg_url, records, "postgres", full)
            if "index-cost" not in args.skip:
                index_cost(random_records(min(args.e2e_rows, 20_000), seed=7), Path(tmp))
            if "rollups" not in args.skip:
                rollup_upkeep(Path(tmp), args.pg, args.e2e_rows)
            if "parts" not in args.skip:
                for traffic in args.parts_traffic:
                    parts(
                        Path(tmp),
                        args.pg,
                        min(args.e2e_rows, 20_000),
                        labels=tuple(args.parts),
                        traffic=traffic,
                    )
            if "upkeep-cpu" not in args.skip:
                _drop(args.pg, schema)  # a fresh schema: the end to end may have filled this one
                pg_url, schema = _pg_schema(args.pg)
                upkeep_cpu(Path(tmp), pg_url, min(args.e2e_rows, 5_000))
            if "inserts" not in args.skip:
                inserts(str(Path(tmp) / "a.db"), args.rows, "sqlite")
                inserts(pg_url, args.rows, "postgres")
            if "record" not in args.skip:
                record_latency(str(Path(tmp) / "b.db"), args.rows)
            if "frame" not in args.skip:
                frame(str(Path(tmp) / "c.db"), args.frame_rows)
        finally:
            _drop(args.pg, schema)


if __name__ == "__main__":
    main()
