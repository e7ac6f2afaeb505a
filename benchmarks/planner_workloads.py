"""Workloads in virtual time, billed by the cachewise emulator under six strategies, two of them oracles.

The workloads (``cachewise.workloads.SUITE``) and the replay (``cachewise.workloads.run``) live in
the package, where the planner tests use them too; this script prints the two tables (the first is
the README's "What the planner buys you" table) for six strategies:

* ``planner``   — cachewise's CachePlanner (counts through the emulator's count_tokens,
  learns from each response with ``observe``);
* ``none``      — no cache_control at all;
* ``automatic`` — Anthropic's automatic caching (top-level ``cache_control``);
* ``static``    — a marker on the last system block and on the last message block;
* ``oracle``    — an offline plan that knows the calls to come (``cachewise.workloads.Oracle``), the
  bound each row's "share of the bound" is measured against: (none − planner) / (none − oracle);
* ``learnable`` — the same oracle, planning each family's first call without the hour (it cannot know
  then that the context returns after more than five minutes): "share of the learnable".

Each (workload, strategy) runs on a fresh emulator; the virtual clock is advanced to
each call's time, and the planner reads the same clock. The billed total comes from
the emulator's bill. Run::

    .venv/bin/python benchmarks/planner_workloads.py [--scale 3] [--server]

``--server`` goes over real HTTP (``EmulatorServer``) instead of the in-process transport.
"""

from __future__ import annotations

import argparse
import sys
import time

from cachewise.workloads import markdown, run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=int, default=3, help="workload size multiplier (default 3)")
    parser.add_argument("--server", action="store_true", help="run over real HTTP with EmulatorServer")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run_suite(args.scale, server=args.server)
    print(markdown(rows))
    print(
        f"\n(scale {args.scale}; {time.perf_counter() - started:.1f} s; "
        f"{'EmulatorServer over HTTP' if args.server else 'in-process EmulatorTransport'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
