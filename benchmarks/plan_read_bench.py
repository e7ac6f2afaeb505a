"""The load benchmark's bodies read as cache positions (``Prompt``) and planned, CPU per body.

Each body is a new parse of the load benchmark's request (a ~10k-token system block, a new user turn
per call), so the long block is a new ``dict`` every time, as in the proxy. One round reads
``--bodies`` bodies with ``Prompt``, then plans them with the proxy's planner (``aplan``, counting
through the in-process emulator, recording each arrival); the first round fills the memos and is not
shown. Prints, per round, the thread CPU per body of ``json.loads`` of the same bytes, of the
reading and of the planning, then the minimum and median over the rounds. To compare two checkouts,
run this file with each one's virtualenv, taking turns (or at once, each pinned to its own core with
``taskset -c N``, and swapped)::

    .venv/bin/python benchmarks/plan_read_bench.py [--bodies 500] [--rounds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from proxy_load_bench import _body, _system_prompt

from cachewise.emulator import Emulator
from cachewise.emulator.transport import AsyncEmulatorTransport
from cachewise.integrations.proxy_planner import caller_headers, upstream_planner
from cachewise.prompt import Prompt

HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}


async def _rounds(bodies: int, rounds: int) -> list[tuple[float, float, float]]:
    """Per round after the first: µs per body of ``json.loads``, ``Prompt`` and ``aplan``."""
    planner = upstream_planner("http://emulator", transport=AsyncEmulatorTransport(Emulator()))
    system = _system_prompt(10_000)
    out: list[tuple[float, float, float]] = []
    with caller_headers(HEADERS):
        for round_ in range(rounds + 1):
            raw = [
                json.dumps(_body(system, round_ * bodies + i, stream=False)).encode() for i in range(bodies)
            ]
            began = time.thread_time()
            parsed = [json.loads(data) for data in raw]
            loads = time.thread_time() - began
            began = time.thread_time()
            for body in parsed:
                Prompt(body)
            read = time.thread_time() - began
            again = [json.loads(data) for data in raw]
            began = time.thread_time()
            for body in again:
                await planner.aplan(body)
            plan = time.thread_time() - began
            if round_:
                out.append((loads / bodies * 1e6, read / bodies * 1e6, plan / bodies * 1e6))
    await planner.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    rows = asyncio.run(_rounds(args.bodies, args.rounds))
    print("| round | json.loads | Prompt | aplan |")
    print("|---|---:|---:|---:|")
    for n, (loads, read, plan) in enumerate(rows, 1):
        print(f"| {n} | {loads:.1f} µs | {read:.1f} µs | {plan:.1f} µs |")
    for name, pick in (("min", min), ("median", statistics.median)):
        cells = " | ".join(f"{pick(column):.1f} µs" for column in zip(*rows, strict=True))
        print(f"| {name} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
