"""The writer thread is woken once per batch, not per row, and still writes when it must.

A row queued while the writer waits out its interval does not wake it; a full batch, a ``flush``
and ``close`` do. The wake count is the writer thread's voluntary context switches, read from
``/proc`` (Linux): each time the thread blocks and is woken counts one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cachewise.ledger import Ledger

from .conftest import make_record

_PROC = Path("/proc/self/task")
on_linux = pytest.mark.skipif(not _PROC.exists(), reason="reads the writer thread's switches from /proc")


def _switches(thread: threading.Thread) -> int:
    status = (_PROC / str(thread.native_id) / "status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("voluntary_ctxt_switches"))
    return int(line.split()[1])


def _writer_thread(led: Ledger) -> threading.Thread:
    thread: threading.Thread = led._writer._thread
    return thread


@on_linux
def test_rows_queued_within_the_interval_do_not_wake_the_writer(open_ledger: Callable[..., Ledger]) -> None:
    led = open_ledger(flush_interval=3600)
    thread = _writer_thread(led)
    led.record(make_record(0))
    time.sleep(0.05)  # the first row wakes it: it now waits out the interval
    before = _switches(thread)
    for i in range(1, 101):
        led.record(make_record(i))
        time.sleep(0.001)  # the writer could run between rows; before, each row woke it
    during = _switches(thread) - before
    assert led.flush(timeout=60) == 101
    assert during < 10, f"the writer was woken {during} times by 100 rows"
    assert len(led.calls()) == 101


def test_flush_does_not_wait_for_the_interval(open_ledger: Callable[..., Ledger]) -> None:
    led = open_ledger(flush_interval=3600)
    for i in range(5):
        led.record(make_record(i))
    # the marker wakes the writer; a writer waiting out the interval would time out instead
    assert led.flush(timeout=60) == 5
    led.record(make_record(5))
    assert led.flush(timeout=60) == 1
    assert sorted(r.request_id for r in led.calls()) == sorted(make_record(i).request_id for i in range(6))


def test_a_full_batch_is_written_without_a_flush(open_ledger: Callable[..., Ledger]) -> None:
    led = open_ledger(flush_interval=3600, batch_size=10)
    led.record(make_record(0))
    time.sleep(0.05)  # the writer holds one row and waits
    for i in range(1, 10):
        led.record(make_record(i))
    deadline = time.monotonic() + 60
    while led.stats.durable < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert led.stats.durable == 10  # the tenth row filled the batch: written, no flush asked


def test_close_writes_rows_queued_within_the_interval(open_ledger: Callable[..., Ledger]) -> None:
    led = open_ledger(flush_interval=3600)
    thread = _writer_thread(led)
    for i in range(20):
        led.record(make_record(i))
    led.close(timeout=60)  # a writer left waiting out its interval would outlast this join
    assert not thread.is_alive()
    assert len(open_ledger().calls()) == 20
