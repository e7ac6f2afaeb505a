"""What counting the system end for the ledger costs: count_tokens calls per request, per suite workload.

The planner counts the end of the system prompt (else of the tools) after choosing, once per prefix
and memoised apart (``CachePlanner(count_system_end=True)``, the default), so that what-if replay of
a static marker there is exact (docs/why.md). This script runs each suite workload
(``cachewise.workloads.SUITE``) through the planner against a fresh emulator twice, with and
without that count, and prints the count_tokens calls of each run, the extra calls per request,
and whether the two runs billed the same (they must: no choice depends on the count). Run::

    .venv/bin/python benchmarks/system_end_counts.py [--scale 1]
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from typing import Any

import anthropic
import httpx2

from cachewise.emulator import Emulator, EmulatorTransport
from cachewise.planner import CachePlanner
from cachewise.tokens import TokenCounter, TokenMemo
from cachewise.workloads import SUITE, Workload, play


def _run(workload: Workload, count_system_end: bool) -> tuple[int, int, Decimal]:
    """(requests, count_tokens calls, billed total) of ``workload`` under the planner."""
    emulator = Emulator()
    http = httpx2.Client(transport=EmulatorTransport(emulator))
    client = anthropic.Anthropic(
        api_key="bench", base_url="http://emulator.local", http_client=http, max_retries=0
    )
    counter = TokenCounter(client, memo=TokenMemo(None))
    planner = CachePlanner(
        counter, book=emulator.book, clock=emulator.now, count_budget=None, count_system_end=count_system_end
    )

    def send(body: dict[str, Any]) -> Any:
        plan = planner.plan(body)
        message = client.messages.create(**plan.request)
        planner.observe(plan, message.usage, emulator.now())
        return message

    requests = play(workload, send, emulator)
    client.close()
    return requests, counter.calls, emulator.bill_total()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=int, default=1, help="workload size multiplier (default 1)")
    args = parser.parse_args(argv)
    print("| workload | requests | counts without | counts with | extra per request | same bill |")
    print("|---|---:|---:|---:|---:|---|")
    extra_total, requests_total = 0, 0
    for make in SUITE:
        workload = make(args.scale)
        requests, without, bill = _run(workload, False)
        _, with_end, bill_with = _run(workload, True)
        extra_total += with_end - without
        requests_total += requests
        per = (with_end - without) / max(1, requests)
        same = "yes" if bill == bill_with else f"NO ({bill} vs {bill_with})"
        print(f"| {workload.name} | {requests} | {without} | {with_end} | {per:.3f} | {same} |")
    print(
        f"\nall: {extra_total} extra count_tokens calls over {requests_total} requests "
        f"({extra_total / max(1, requests_total):.3f} per request)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
