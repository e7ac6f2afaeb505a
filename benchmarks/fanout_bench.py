"""Fan-out and batches: the same jobs' bill with fan-out control off, hold and pre-warm; a batch's
bill planned, unplanned and with a static placement.

    python benchmarks/fanout_bench.py [--scale 1] [--ttfb 0.15] [--generation 3] [--async]

Fan-out: :func:`cachewise.workloads.fanout_jobs` (waves of parallel jobs on a shared system
prompt and document, 10 minutes apart) replayed on a fresh in-process emulator per mode, each
wave's jobs sent together from threads (or ``asyncio.gather`` with ``--async``). Every response
begins ``--ttfb`` real seconds after its request is read (an emulator ``delay`` fault), which is
when its cache writes become readable. Printed per mode: the bill, how many calls wrote the
shared prefix, the wall time of the waves, and the time added against ``off``; and a no-caching
bill (planner off) as the reference. Run twice: with fast replies, and with slow non-streamed
replies, whose headers arrive ``--generation`` seconds after the response began (the whole message
is generated first), as on the API; a pre-warm (``max_tokens: 0``) generates nothing.

Batches: :func:`cachewise.workloads.batch_jobs` sent as one Message Batch through a wrapped
client: unplanned (as written, no markers), static (a 5m marker on the system prompt and on the
last block of each request), and planned (cachewise's batch planner). Ratios are against the
unplanned bill of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import anthropic
import httpx2

import cachewise
from cachewise.emulator import AsyncEmulatorTransport, Emulator, EmulatorTransport
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
    args = parser.parse_args()
    out = {
        "fanout": fanout(args.scale, args.ttfb, args.use_async),
        "fanout_slow_replies": fanout(args.scale, args.ttfb, args.use_async, args.generation),
        "batch": batches(args.scale),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
