"""First sight of a context after other traffic: the planner continuing from a history, against a fresh one.

A context seen for the first time is written for five minutes by a fresh planner: nothing says yet
that it comes back after more than five minutes (docs/planner.md, "Where it falls short"). A planner
that has been running has seen other contexts come back, or not, and learns across families how
often a context of that size returns after its 5-minute entry lapsed (``ReuseStats.p_family_return``).
Each row replays a suite workload ("today") on a fresh emulator with the planner, once fresh and once
after a history (other traffic, a day earlier on the same clock, planned by the same planner), and
compares both input-side bills with today's no-caching bill and oracle bound, measured in the same run.
The controls are histories whose contexts never return, or of another size, and workloads whose
families are one-shot or small; one row is the bet lost: contexts like those that came back, each seen
once (the hour's write at first sight is paid and never read). Run::

    .venv/bin/python benchmarks/first_sight.py [--scale 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from decimal import Decimal

from cachewise.workloads import Call, Workload, run, share
from cachewise.workloads.suite import chat_long_system, document_qa, many_tenants, sparse_large_context
from cachewise.workloads.unseen import huge_contexts

Make = Callable[[], Workload]


def first_visits(workload: Workload) -> Workload:
    """Only the first call of each system prompt: contexts seen once and never again."""
    seen: set[str] = set()
    calls: list[Call] = []
    for call in workload.calls():
        system = str(call.request.get("system"))
        if system not in seen:
            seen.add(system)
            calls.append(call)
    return Workload.of(f"{workload.name}, first visits only", "each context once", calls)


def scenarios(scale: int) -> list[tuple[str, Make, Make]]:
    """(history's name, history, today): today's workloads use the suite's own seeds."""
    return [
        ("contexts of 150k–230k, other seed", lambda: huge_contexts(scale, 13), lambda: huge_contexts(scale)),
        (
            "the same contexts, first visits only",
            lambda: first_visits(huge_contexts(scale, 13)),
            lambda: huge_contexts(scale),
        ),
        (
            "contexts of 150k–230k, other seed",
            lambda: huge_contexts(scale, 13),
            lambda: first_visits(huge_contexts(scale)),
        ),
        (
            "sparse 20–40 min, other seed",
            lambda: sparse_large_context(scale, 6),
            lambda: sparse_large_context(scale),
        ),
        (
            "contexts of 150k–230k, other seed",
            lambda: huge_contexts(scale, 13),
            lambda: sparse_large_context(scale),
        ),
        ("many tenants, other seed", lambda: many_tenants(scale, 8), lambda: many_tenants(scale)),
        ("contexts of 150k–230k, other seed", lambda: huge_contexts(scale, 13), lambda: many_tenants(scale)),
        ("sparse 20–40 min, other seed", lambda: sparse_large_context(scale, 6), lambda: document_qa(scale)),
        (
            "sparse 20–40 min, other seed",
            lambda: sparse_large_context(scale, 6),
            lambda: chat_long_system(scale),
        ),
    ]


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=int, default=3, help="workload size multiplier (default 3)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(
        "| today | history | calls | fresh planner | after the history | no caching | oracle bound "
        "| share, fresh | share, after |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for history_name, history, today in scenarios(args.scale):
        workload = today()
        fresh = run(workload, "planner")
        after = run(workload, "planner", history=history())
        none = run(workload, "none")
        oracle = run(workload, "oracle")
        print(
            f"| {workload.name} | {history_name} | {fresh.requests} | {fresh.input_cost:.4f} "
            f"| {after.input_cost:.4f} | {none.input_cost:.4f} | {oracle.input_cost:.4f} "
            f"| {_pct(share([fresh, none, oracle]))} | {_pct(share([after, none, oracle]))} |",
            flush=True,
        )
    print(f"\n(scale {args.scale}; {time.perf_counter() - started:.1f} s; in-process EmulatorTransport)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
