"""The ledger's CPU per row as one prefix family's stored calls grow: the proxy load bench's shape.

The load benchmark's calls all share one system prompt, so one prefix family: a cache write, then a
read every few milliseconds. This bench records such calls into a SQLite ledger in batches of
``--batch`` rows (``Ledger.record`` each, then ``flush``) and prints, every few batches, the
process CPU per row of that batch (recording, the writer thread's insert and the rollups' upkeep)
against how many calls of the family were already stored. Calls are 3 ms apart, so the whole run
stays within the hour that the rollups' family read looks back and ahead. Run::

    .venv/bin/python benchmarks/family_upkeep_bench.py [--batches 41] [--batch 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta

from cachewise.ledger import Ledger
from cachewise.ledger.record import CallRecord
from cachewise.usage import Usage

FAMILY = "f" * 64


def _call(n: int, start: datetime) -> CallRecord:
    """The ``n``-th call of the family: the first writes the prefix, the others read it."""
    usage = Usage.from_api(
        {
            "input_tokens": 12,
            "cache_read_input_tokens": 10_003 if n else 0,
            "cache_creation_input_tokens": 0 if n else 10_003,
            "output_tokens": 32,
        }
    )
    return CallRecord.priced(
        usage=usage,
        model="claude-sonnet-4-5",
        started_at=start + timedelta(milliseconds=3 * n),
        request_id=f"req_family_{n}",
        prefix_hash=FAMILY,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=41)
    parser.add_argument("--batch", type=int, default=300)
    args = parser.parse_args()
    start = datetime.now(UTC) - timedelta(minutes=50)
    print("| family calls stored | CPU per row |")
    print("|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"{tmp}/family.db")
        stored = 0
        for batch in range(args.batches):
            calls = [_call(stored + i, start) for i in range(args.batch)]
            began = time.process_time()
            for call in calls:
                ledger.record(call)
            ledger.flush()
            took = time.process_time() - began
            if batch % 8 == 0 or batch == args.batches - 1:
                print(f"| {stored:,} | {took / args.batch * 1e6:.1f} µs |", flush=True)
            stored += args.batch
        ledger.close()


if __name__ == "__main__":
    main()
