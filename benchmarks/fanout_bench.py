"""Fan-out and batches: the same jobs' bill with fan-out control off, hold and pre-warm; a batch's
bill planned, unplanned and with a static placement.

    python benchmarks/fanout_bench.py [--scale 1] [--ttfb 0.15] [--generation 3] [--async]
    python benchmarks/fanout_bench.py --processes 2 [--scale 1] [--ttfb 0.15]

Fan-out: :func:`cachewise.workloads.fanout_jobs` (waves of parallel jobs on a shared system
prompt and document, 10 minutes apart) replayed on a fresh in-process emulator per mode, each
wave's jobs sent together from threads (or ``asyncio.gather`` with ``--async``). Every response
begins ``--ttfb`` real seconds after its request is read (an emulator ``delay`` fault), which is
when its cache writes become readable. Printed per mode: the bill, how many calls wrote the
shared prefix, the wall time of the waves, and the time added against ``off``; and a no-caching
bill (planner off) as the reference. Run twice: with fast replies, and with slow non-streamed
replies, whose headers arrive ``--generation`` seconds after the response began (the whole message
is generated first), as on the API; a pre-warm (``max_tokens: 0``) generates nothing.

``--processes N``: the same waves split over N worker processes (each its own wrapped client,
planner and fan-out control, all on one emulator served over HTTP), every process sending its
share of a wave at the same moment, as a fleet behind a load balancer would. Modes: ``off``;
``hold`` without a store (each process holds its own requests only); and, on Redis and on
PostgreSQL, ``reuse_store=`` with the fan-out leases taken off (planner state shared, fan-out per
process) and with them (one process leads a cold prefix, the others wait for it).

Batches: :func:`cachewise.workloads.batch_jobs` sent as one Message Batch through a wrapped
client: unplanned (as written, no markers), static (a 5m marker on the system prompt and on the
last block of each request), and planned (cachewise's batch planner). Ratios are against the
unplanned bill of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import anthropic
import httpx2

import cachewise
from cachewise.emulator import AsyncEmulatorTransport, Emulator, EmulatorServer, EmulatorTransport
from cachewise.ledger import Ledger
from cachewise.workloads import batch_jobs, fanout_jobs, static_markers, waves


class _Slow(httpx2.BaseTransport):
    """The emulator, with a reply's headers held back ``seconds`` when it generates output."""

    def __init__(self, inner: httpx2.BaseTransport, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.inner.handle_request(request)
        if self.seconds and _generates(request):
            time.sleep(self.seconds)
        return response


class _AsyncSlow(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx2.AsyncBaseTransport, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if self.seconds and _generates(request):
            await asyncio.sleep(self.seconds)
        return response


def _generates(request: httpx2.Request) -> bool:
    if not request.url.path.endswith("/v1/messages"):
        return False
    body = json.loads(request.content or b"{}")
    return bool(body.get("max_tokens")) and not body.get("stream")


SHARED_FLOOR = 3000  # tokens: a write or read this large covers the shared prompt, not a job's own tail


def _bill(emu: Emulator) -> Decimal:
    return emu.bill_total()


def _writes(emu: Emulator) -> int:
    return sum(1 for r in emu.billing.rows() if r.usage["cache_creation_input_tokens"] >= SHARED_FLOOR)


def _fan_sync(mode: str, planner: bool, scale: int, ttfb: float, generation: float) -> dict[str, Any]:
    emu = Emulator()
    raw = anthropic.Anthropic(
        api_key="bench",
        base_url="http://emulator",
        max_retries=0,
        http_client=httpx2.Client(transport=_Slow(EmulatorTransport(emu), generation)),
    )
    client = cachewise.wrap(
        raw, ledger=Ledger("sqlite://"), clock=emu.now, planner=planner, fanout=mode, diagnostics=False
    )
    plan = waves(fanout_jobs(scale))
    emu.faults.add("delay", count=10_000, seconds=ttfb)
    start, wall = emu.now(), 0.0
    with ThreadPoolExecutor(max_workers=max(len(jobs) for _, jobs in plan)) as pool:
        for at, jobs in plan:
            emu.advance(max(0.0, at - (emu.now() - start).total_seconds()))
            began = time.perf_counter()
            list(pool.map(lambda body: client.messages.create(**body), jobs))
            wall += time.perf_counter() - began
    return {"bill": _bill(emu), "writes": _writes(emu), "calls": len(emu.billing.rows()), "wall": wall}


def _fan_async(mode: str, planner: bool, scale: int, ttfb: float, generation: float) -> dict[str, Any]:
    emu = Emulator()

    async def main() -> float:
        raw = anthropic.AsyncAnthropic(
            api_key="bench",
            base_url="http://emulator",
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=_AsyncSlow(AsyncEmulatorTransport(emu), generation)),
        )
        client = cachewise.wrap(
            raw, ledger=Ledger("sqlite://"), clock=emu.now, planner=planner, fanout=mode, diagnostics=False
        )
        start, wall = emu.now(), 0.0
        for at, jobs in waves(fanout_jobs(scale)):
            emu.advance(max(0.0, at - (emu.now() - start).total_seconds()))
            began = time.perf_counter()
            await asyncio.gather(*(client.messages.create(**body) for body in jobs))
            wall += time.perf_counter() - began
        return wall

    emu.faults.add("delay", count=10_000, seconds=ttfb)
    wall = asyncio.run(main())
    return {"bill": _bill(emu), "writes": _writes(emu), "calls": len(emu.billing.rows()), "wall": wall}


def fanout(scale: int, ttfb: float, use_async: bool, generation: float = 0.0) -> dict[str, Any]:
    run = _fan_async if use_async else _fan_sync
    none = run("off", False, scale, ttfb, generation)
    rows = {mode: run(mode, True, scale, ttfb, generation) for mode in ("off", "hold", "prewarm")}
    off = rows["off"]
    return {
        "jobs": sum(len(jobs) for _, jobs in waves(fanout_jobs(scale))),
        "waves": len(waves(fanout_jobs(scale))),
        "ttfb_s": ttfb,
        "generation_s": generation,
        "driver": "asyncio" if use_async else "threads",
        "no_caching_bill": str(none["bill"]),
        "modes": {
            mode: {
                "bill": str(r["bill"]),
                "bill_vs_off": round(float(r["bill"] / off["bill"]), 3),
                "bill_vs_no_caching": round(float(r["bill"] / none["bill"]), 3),
                "prefix_writes": r["writes"],
                "billed_calls": r["calls"],
                "wall_s": round(r["wall"], 2),
                "added_wall_s": round(r["wall"] - off["wall"], 2),
            }
            for mode, r in rows.items()
        },
    }


def _fleet_worker(conn: Any, base_url: str, mode: str, store: str | None, leases: bool) -> None:
    """One process of a fleet: a wrapped client of its own; sends each wave's share when told."""
    now: list[datetime] = []
    raw = anthropic.Anthropic(api_key="bench", base_url=base_url, max_retries=0)
    client = cachewise.wrap(
        raw,
        ledger=Ledger("sqlite://"),
        clock=lambda: now[-1],
        fanout=mode,
        diagnostics=False,
        reuse_store=store,
        warm_start=False,
    )
    if not leases:
        middleware = next(m for m in client._middleware if hasattr(m, "fanout"))  # type: ignore[attr-defined]
        middleware.fanout.leases = None
    conn.send(None)
    with ThreadPoolExecutor(max_workers=64) as pool:
        while (job := conn.recv()) is not None:
            at, bodies = job
            now[:] = [at]
            conn.send(None)  # ready: the parent says go to every process at once
            conn.recv()
            began = time.perf_counter()
            list(pool.map(lambda body: client.messages.create(**body), bodies))
            conn.send(time.perf_counter() - began)
    raw.close()


def _fan_fleet(
    processes: int, mode: str, store: str | None, leases: bool, scale: int, ttfb: float
) -> dict[str, Any]:
    emu = Emulator()
    context = multiprocessing.get_context("spawn")
    wall = 0.0
    with EmulatorServer(emu) as server:
        pipes, workers = [], []
        for _ in range(processes):
            parent, child = context.Pipe()
            worker = context.Process(
                target=_fleet_worker, args=(child, server.base_url, mode, store, leases), daemon=True
            )
            worker.start()
            pipes.append(parent)
            workers.append(worker)
        for pipe in pipes:
            pipe.recv()
        emu.faults.add("delay", count=10_000, seconds=ttfb)
        start = emu.now()
        for at, jobs in waves(fanout_jobs(scale)):
            emu.advance(max(0.0, at - (emu.now() - start).total_seconds()))
            for i, pipe in enumerate(pipes):
                pipe.send((emu.now(), jobs[i::processes]))
            for pipe in pipes:
                pipe.recv()
            for pipe in pipes:
                pipe.send("go")
            wall += max(pipe.recv() for pipe in pipes)
        for pipe in pipes:
            pipe.send(None)
        for worker in workers:
            worker.join(30)
    return {"bill": _bill(emu), "writes": _writes(emu), "calls": len(emu.billing.rows()), "wall": wall}


def fanout_fleet(processes: int, scale: int, ttfb: float, redis_url: str, pg_url: str) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {
        "off": _fan_fleet(processes, "off", None, False, scale, ttfb),
        "hold, each process alone": _fan_fleet(processes, "hold", None, False, scale, ttfb),
    }
    for backend, base in (("redis", redis_url), ("postgres", pg_url)):
        for leases in (False, True):
            with _store(backend, base) as url:
                name = f"hold, {backend} store, {'with' if leases else 'without'} fan-out leases"
                rows[name] = _fan_fleet(processes, "hold", url, leases, scale, ttfb)
    off = rows["off"]
    return {
        "processes": processes,
        "jobs": sum(len(jobs) for _, jobs in waves(fanout_jobs(scale))),
        "waves": len(waves(fanout_jobs(scale))),
        "ttfb_s": ttfb,
        "modes": {
            mode: {
                "bill": str(r["bill"]),
                "bill_vs_off": round(float(r["bill"] / off["bill"]), 3),
                "prefix_writes": r["writes"],
                "billed_calls": r["calls"],
                "wall_s": round(r["wall"], 2),
                "added_wall_s": round(r["wall"] - off["wall"], 2),
            }
            for mode, r in rows.items()
        },
    }


@contextmanager
def _store(backend: str, base: str) -> Iterator[str]:
    """A store URL of this run's own (a Redis key prefix, a PostgreSQL schema), removed after."""
    tag = uuid.uuid4().hex[:10]
    if backend == "redis":
        import redis

        try:
            yield f"{base}?prefix=cw-fanbench-{tag}"
        finally:
            client = redis.Redis.from_url(base)
            keys = list(client.scan_iter(f"cw-fanbench-{tag}:*"))
            if keys:
                client.delete(*keys)
            client.close()
        return
    import psycopg

    schema = f"cw_fanbench_{tag}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _batch_bill(body: dict[str, Any], planner: bool) -> tuple[Decimal, int]:
    emu = Emulator()
    raw = anthropic.Anthropic(
        api_key="bench",
        base_url="http://emulator",
        max_retries=0,
        http_client=httpx2.Client(transport=EmulatorTransport(emu)),
    )
    ledger = Ledger("sqlite://")
    client = cachewise.wrap(raw, ledger=ledger, clock=emu.now, planner=planner, diagnostics=False)
    batch = client.messages.batches.create(**body)
    emu.advance(60)
    results = list(client.messages.batches.results(batch.id))
    assert all(r.result.type == "succeeded" for r in results), "a batch request failed"
    reads = sum(r.usage["cache_read_input_tokens"] for r in emu.billing.rows())
    return _bill(emu), reads


def batches(scale: int) -> dict[str, Any]:
    body = batch_jobs(scale)
    static = {"requests": [{**r, "params": static_markers(r["params"])} for r in body["requests"]]}
    unplanned, _ = _batch_bill(body, planner=False)
    fixed, fixed_reads = _batch_bill(static, planner=False)
    planned, planned_reads = _batch_bill(body, planner=True)
    return {
        "requests": len(body["requests"]),
        "unplanned_bill": str(unplanned),
        "static_bill": str(fixed),
        "planned_bill": str(planned),
        "static_vs_unplanned": round(float(fixed / unplanned), 3),
        "planned_vs_unplanned": round(float(planned / unplanned), 3),
        "planned_vs_static": round(float(planned / fixed), 3),
        "read_tokens": {"static": fixed_reads, "planned": planned_reads},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--ttfb", type=float, default=0.15, help="seconds before each response begins")
    parser.add_argument(
        "--generation", type=float, default=3.0, help="seconds a non-streamed reply takes after it began"
    )
    parser.add_argument("--async", dest="use_async", action="store_true", help="asyncio instead of threads")
    parser.add_argument("--processes", type=int, default=1, help="split each wave over this many processes")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if args.processes > 1:
        fleet = fanout_fleet(args.processes, args.scale, args.ttfb, args.redis, args.postgres)
        print(json.dumps({"fanout_fleet": fleet}, indent=2))
        return
    out = {
        "fanout": fanout(args.scale, args.ttfb, args.use_async),
        "fanout_slow_replies": fanout(args.scale, args.ttfb, args.use_async, args.generation),
        "batch": batches(args.scale),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
