"""The ledger writer's CPU when rows arrive one at a time, as a proxy records them.

Records ``--rows`` rows into a SQLite ledger, one every ``--gap`` seconds (the recording thread
sleeps between rows, as an event loop waits on sockets), then flushes. Prints the CPU time of the
writer thread and of the whole process per row, and the writer thread's voluntary context switches
(each one a time it blocked and was woken), so two checkouts can be compared in the same run::

    .venv/bin/python benchmarks/writer_wake_bench.py [--rows 3000] [--gap 0.0005]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cachewise.ledger import CallRecord, Ledger
from cachewise.usage import Usage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _record(i: int) -> CallRecord:
    usage = Usage(input_tokens=100 + i, cache_read_input_tokens=10_000, output_tokens=32)
    return CallRecord.priced(
        usage=usage, model="claude-sonnet-4-5", started_at=T0 + timedelta(seconds=i), request_id=f"req_{i}"
    )


def _switches(thread: threading.Thread) -> int:
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("voluntary_ctxt_switches")).split()[1])


def _thread_cpu(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--gap", type=float, default=0.0005, help="Seconds between two rows.")
    args = parser.parse_args()
    records = [_record(i) for i in range(args.rows)]
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/writer.db")
        writer: threading.Thread = ledger._writer._thread
        ledger.record(_record(-1))
        ledger.flush()
        cpu0, own0, sw0 = time.process_time(), _thread_cpu(writer), _switches(writer)
        for record in records:
            ledger.record(record)
            time.sleep(args.gap)
        ledger.flush()
        cpu1, own1, sw1 = time.process_time(), _thread_cpu(writer), _switches(writer)
        ledger.close()
    n = args.rows
    print(
        f"rows {n}, gap {args.gap * 1e3:.2f} ms: writer thread {(own1 - own0) / n * 1e6:.1f} µs/row, "
        f"process {(cpu1 - cpu0) / n * 1e6:.1f} µs/row, writer wakes {sw1 - sw0}"
    )


if __name__ == "__main__":
    main()
