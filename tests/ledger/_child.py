"""Subprocess body for the crash and concurrency tests (run as a script, not collected)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cachewise.ledger import Ledger
from tests.ledger.conftest import make_record


def crash(url: str, spool_dir: str, busy_timeout: float) -> None:
    """Record forever; after each flush print the highest index acknowledged."""
    led = Ledger(url, spool_dir=spool_dir, busy_timeout=busy_timeout, flush_interval=0.01, retry_interval=60)
    i = 0
    while True:
        for _ in range(37):
            led.record(make_record(i))
            i += 1
        led.flush()
        print(i - 1, flush=True)


def concurrent(url: str, spool_dir: str, process: int, threads: int, rows: int) -> None:
    led = Ledger(url, spool_dir=spool_dir, batch_size=2000, flush_interval=0.2)

    def work(thread: int) -> None:
        base = (process * threads + thread) * rows
        for i in range(base, base + rows):
            led.record(make_record(i))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    led.flush()
    print(led.stats.inserted, led.stats.spooled, flush=True)
    led.close()


def wait_for_signal(url: str, spool_dir: str, rows: int, handler: str, busy_timeout: float) -> None:
    """Record ``rows`` rows without flushing, print ``ready``, then idle until a signal arrives.

    ``handler``: ``none`` (Python's defaults), ``user`` (a SIGTERM handler set before the
    ledger opens, which prints and exits 3) or ``ignore`` (SIGTERM ignored before it opens).
    """
    import signal
    import time

    if handler == "user":

        def on_term(signum: int, frame: object) -> None:
            print("user handler", signum, flush=True)
            sys.exit(3)

        signal.signal(signal.SIGTERM, on_term)
    elif handler == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    led = Ledger(
        url,
        spool_dir=spool_dir,
        flush_interval=3600,
        batch_size=1_000_000,
        retry_interval=60,
        busy_timeout=busy_timeout,
    )
    for i in range(rows):
        led.record(make_record(i))
    try:
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", led.stats.durable, flush=True)
        raise


_KEPT: list[Ledger] = []


def exit_unflushed(url: str, spool_dir: str, rows: int) -> None:
    """Record ``rows`` rows and let the interpreter exit: the atexit flush writes them.

    The ledger stays referenced: the exit flush covers the ledgers still open (a weak set).
    """
    led = Ledger(url, spool_dir=spool_dir, flush_interval=3600, batch_size=1_000_000)
    _KEPT.append(led)
    for i in range(rows):
        led.record(make_record(i))


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "crash":
        crash(args[0], args[1], float(args[2]))
    elif mode == "signal":
        wait_for_signal(args[0], args[1], int(args[2]), args[3], float(args[4]))
    elif mode == "exit":
        exit_unflushed(args[0], args[1], int(args[2]))
    else:
        concurrent(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
