"""Two planner processes on one stream of traffic: alone, or sharing reuse state through PostgreSQL or Redis.

Part 1, the bill (input side: the emulator's bill minus output, what caching changes) of each
workload planned by one process, by two isolated processes (round-robin), and by two processes
sharing their state, each through PostgreSQL and Redis: ``sync`` (each worker reads what the
fleet published before it plans: exactly what one process knows) and ``async`` (the production
path: publish and read in the background, no wait; requests here follow each other within
milliseconds, so this is the worst case for staleness). Part 2, what sharing costs per request
on the planner's own thread (plan + observe, warm memo), against the same planner with no store
and against one ``json.dumps`` of the body measured in the same run; and the store round trip
(one process's event visible to another, ``Fleet.sync``). Run::

    .venv/bin/python benchmarks/shared_reuse_bench.py [--workloads "few-shot,agent loop"] [--repeat 5]

Needs Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 (``--redis``, ``--postgres``);
each run uses its own key prefix / schema and removes it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import psycopg
import redis

from cachewise.emulator import Emulator, EmulatorTransport
from cachewise.fleet import Fleet, attach
from cachewise.planner import CachePlanner
from cachewise.tokens import TokenCounter, TokenMemo
from cachewise.workloads import SUITE, Workload, run
from cachewise.workloads.fleet import FleetReplay

CLOCK = time.perf_counter  # --cpu: time.thread_time, the planner thread's own CPU


def _workload(name: str) -> Workload:
    for make in SUITE:
        workload = make(1)
        if workload.name == name:
            return workload
    raise SystemExit(f"no workload {name!r}; pick from {', '.join(m(1).name for m in SUITE)}")


@contextmanager
def _redis_url(base: str) -> Iterator[str]:
    prefix = f"cw-bench-{uuid.uuid4().hex[:10]}"
    try:
        yield f"{base}?prefix={prefix}"
    finally:
        client = redis.Redis.from_url(base)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@contextmanager
def _pg_url(base: str) -> Iterator[str]:
    schema = f"cw_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _bills(names: list[str], redis_base: str, pg_base: str) -> None:
    print("## The bill: input side (emulator bill minus output), two processes round-robin\n")
    print("| workload | calls | one process | two isolated | PG sync | Redis sync | PG async | Redis async |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with FleetReplay(2) as replay:  # two worker processes for the whole table, fresh state each run
        for name in names:
            one = run(_workload(name), "planner")
            cells: list[Decimal] = [replay.run(_workload(name)).input_cost]
            for sync in (True, False):
                with _pg_url(pg_base) as pg:
                    cells.append(replay.run(_workload(name), store=pg, sync=sync).input_cost)
                with _redis_url(redis_base) as rd:
                    cells.append(replay.run(_workload(name), store=rd, sync=sync).input_cost)
            isolated, pg_sync, rd_sync, pg_async, rd_async = cells

            def vs(x: Decimal, one: Decimal = one.input_cost) -> str:
                return f"${x:.5f} ({(x - one) / one:+.1%})" if one else f"${x:.5f}"

            row = [vs(c) for c in (isolated, pg_sync, rd_sync, pg_async, rd_async)]
            head = f"| {name} | {one.requests} | ${one.input_cost:.5f} | "
            print(head + " | ".join(row) + " |", flush=True)
    print()


def _one_run(workload: Workload, memo: TokenMemo, attach_to: Callable[[CachePlanner], Fleet | None]) -> float:
    """Mean seconds per request of plan + observe over one replay of ``workload``."""
    calls = list(workload.calls())
    emulator = Emulator()
    http = httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator")
    client = anthropic.Anthropic(api_key="bench", base_url="http://emulator", http_client=http)
    planner = CachePlanner(TokenCounter(client, memo=memo), book=emulator.book, clock=emulator.now)
    fleet = attach_to(planner)
    start, spent = emulator.now(), 0.0
    for call in calls:
        lag = call.at - (emulator.now() - start).total_seconds()
        if lag > 0:
            emulator.advance(lag)
        t0 = CLOCK()
        plan = planner.plan(call.request)
        spent += CLOCK() - t0
        message = client.messages.create(**plan.request)
        t0 = CLOCK()
        planner.observe(plan, message.usage, emulator.now())
        spent += CLOCK() - t0
    if fleet is not None:
        fleet.close()
    client.close()
    return spent / len(calls)


def _hot_path(
    workload: Workload, variants: dict[str, Callable[[CachePlanner], Fleet | None]], repeat: int
) -> dict[str, float]:
    """Per variant, the median over ``repeat`` interleaved runs (a first untimed run fills the memo)."""
    memo = TokenMemo(None)
    _one_run(workload, memo, lambda p: None)
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, attach_to in variants.items():
            runs[name].append(_one_run(workload, memo, attach_to))
    return {name: statistics.median(values) for name, values in runs.items()}


def _dumps(workload: Workload, repeat: int) -> float:
    bodies = [c.request for c in workload.calls()]
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for body in bodies:
            json.dumps(body)
        best.append((time.perf_counter() - t0) / len(bodies))
    return statistics.median(best)


def _round_trip(url: str, samples: int = 200) -> tuple[float, float]:
    """Median and p95 seconds from one fleet's publish to the other fleet having read it."""
    with _store(url) as store_url:
        a, b = CachePlanner(None), CachePlanner(None)
        fa, fb = attach(a, store=store_url), attach(b, store=store_url)
        assert fa is not None and fb is not None
        times = []
        for i in range(samples):
            t0 = time.perf_counter()
            fa.publish(["f", f"{i:016x}"])
            fa.sync()
            fb.sync()
            times.append(time.perf_counter() - t0)
        fa.close()
        fb.close()
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


_store_bases: dict[str, Callable[[str], Any]] = {"redis": _redis_url, "postgresql": _pg_url}


@contextmanager
def _store(url: str) -> Iterator[str]:
    with _store_bases["redis" if url.startswith("redis") else "postgresql"](url) as scoped:
        yield scoped


def _overhead(names: list[str], redis_base: str, pg_base: str, repeat: int) -> None:
    print("## Per request on the planner's thread: plan + observe, warm memo (median of runs)\n")
    print("| workload | json.dumps | no store | ledger keys (warm start) | PG shared | Redis shared |")
    print("|---|---:|---:|---:|---:|---:|")
    from cachewise.fleet import FleetStats

    def warm_keys(planner: CachePlanner) -> None:
        planner.stats = FleetStats()
        return None

    for name in names:
        workload = _workload(name)
        dumps = _dumps(workload, repeat * 20)
        with _pg_url(pg_base) as pg, _redis_url(redis_base) as rd:
            got = _hot_path(
                workload,
                {
                    "plain": lambda p: None,
                    "keyed": warm_keys,
                    "pg": lambda p: attach(p, store=pg),
                    "redis": lambda p: attach(p, store=rd),
                },
                repeat,
            )
        plain = got["plain"]

        def cell(x: float, plain: float = plain) -> str:
            return f"{x * 1e6:,.0f} µs ({x / plain:.2f}×)"

        print(
            f"| {name} | {dumps * 1e6:,.1f} µs | {plain * 1e6:,.0f} µs | {cell(got['keyed'])} | "
            f"{cell(got['pg'])} | {cell(got['redis'])} |"
        )
    print("\n## Store round trip: one process's event read by another (Fleet.sync on both)\n")
    for label, base in (("PostgreSQL", pg_base), ("Redis", redis_base)):
        median, p95 = _round_trip(base)
        print(f"- {label}: median {median * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms")
    print()


def _warm_start_cost(name: str, repeat: int) -> None:
    """What ``wrap(warm_start=True)`` costs at start: seeding a planner from a ledger of one workload."""
    import tempfile
    from pathlib import Path

    import cachewise
    from cachewise.ledger import Ledger

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.db"
        emulator = Emulator()
        http = httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator")
        client = anthropic.Anthropic(api_key="bench", base_url="http://emulator", http_client=http)
        ledger = Ledger(path)
        wrapped = cachewise.wrap(client, ledger=ledger, clock=emulator.now, warm_start=False)
        start = emulator.now()
        for call in _workload(name).calls():
            lag = call.at - (emulator.now() - start).total_seconds()
            if lag > 0:
                emulator.advance(lag)
            wrapped.messages.create(**call.request)
        ledger.flush()
        calls = len(ledger.calls())
        ledger.close()
        times = []
        for _ in range(repeat):
            with Ledger(path) as fresh:
                planner = CachePlanner(None, clock=emulator.now)
                t0 = time.perf_counter()
                attach(planner, ledger=fresh)
                times.append(time.perf_counter() - t0)
    took = statistics.median(times)
    print(f"## Warm start at wrap(): seeding from a ledger of {calls} calls ({name})\n")
    print(f"- {took * 1e3:.1f} ms ({took / calls * 1e6:.0f} µs per call read and replayed)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--workloads", default="few-shot,agent loop,model mix", help="comma-separated names, or 'all'"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per hot-path figure (default 5)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-bills", action="store_true", help="only the overhead figures")
    parser.add_argument("--bills-only", action="store_true", help="only the bill table")
    parser.add_argument(
        "--cpu", action="store_true", help="time the planner thread's CPU (thread_time), not the wall clock"
    )
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.thread_time if args.cpu else time.perf_counter
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    if args.workloads == "all":
        names = [make(1).name for make in SUITE]
    started = time.perf_counter()
    if not args.skip_bills:
        _bills(names, args.redis, args.postgres)
    if args.bills_only:
        print(f"({time.perf_counter() - started:.0f} s)")
        return 0
    _overhead(names, args.redis, args.postgres, args.repeat)
    _warm_start_cost("many tenants", args.repeat)
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
