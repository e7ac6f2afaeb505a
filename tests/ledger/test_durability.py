"""A writer killed with SIGKILL loses nothing it acknowledged; many writers count exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal, localcontext
from pathlib import Path

import pytest

from cachewise.ledger import Ledger

from .conftest import Backend, Outage, costs

CHILD = Path(__file__).with_name("_child.py")


def _run_until_acked(url: str, spool_dir: Path, at_least: int, busy_timeout: float = 30.0) -> int:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), "crash", url, str(spool_dir), str(busy_timeout)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acked = -1
    deadline = time.monotonic() + 60
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= at_least or time.monotonic() > deadline:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return acked


def _check(led: Ledger, acked: int) -> None:
    ids = {r.request_id for r in led.calls()}
    missing = [i for i in range(acked + 1) if f"req_{i:08d}" not in ids]
    assert not missing, f"{len(missing)} acknowledged rows lost, first {missing[:5]}"
    frame = led.to_frame()
    assert frame["request_id"].is_unique


def test_sigkill_while_writing_loses_no_acknowledged_row(
    backend: Backend, open_ledger: Callable[..., Ledger]
) -> None:
    open_ledger().close()  # create the schema first
    acked = _run_until_acked(backend.url, backend.spool_dir, at_least=300)
    assert acked >= 300
    _check(open_ledger(), acked)


def test_sigkill_while_spooling_loses_no_acknowledged_row(
    backend: Backend, outage: Outage, open_ledger: Callable[..., Ledger]
) -> None:
    open_ledger(outage.url).close()
    outage.down()
    acked = _run_until_acked(outage.url, backend.spool_dir, at_least=300, busy_timeout=0.1)
    outage.up()
    led = open_ledger(outage.url)
    led.replay()
    _check(led, acked)


@pytest.mark.slow
def test_four_processes_eight_threads_each_count_exactly(
    backend: Backend, open_ledger: Callable[..., Ledger]
) -> None:
    processes, threads, rows = 4, 8, 10_000
    open_ledger().close()
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                "concurrent",
                backend.url,
                str(backend.spool_dir),
                *map(str, (p, threads, rows)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    elapsed = time.monotonic() - started
    total_rows = processes * threads * rows
    inserted = sum(int(out.split()[0]) for out in outputs)
    assert inserted == total_rows
    led = open_ledger()
    totals = led.totals()
    assert totals.calls == total_rows
    with localcontext(prec=200):
        by_residue = Counter(i % 997 for i in range(total_rows))
        expected = sum((costs(r).cost_total * n for r, n in by_residue.items()), Decimal(0))
    assert totals.cost_total == expected
    assert totals.output_tokens == sum(200 + i % 11 for i in range(total_rows))
    print(f"\n{backend.name}: {total_rows} rows from {processes}x{threads} writers in {elapsed:.1f} s")
