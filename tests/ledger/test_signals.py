"""SIGTERM and SIGINT flush the open ledgers before the process stops, then stop it as before."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cachewise.ledger import Ledger
from cachewise.ledger import signals as ledger_signals

from .conftest import Backend, Outage

CHILD = Path(__file__).with_name("_child.py")
ROWS = 250


def _signal_child(
    url: str, spool_dir: Path, sig: int, handler: str = "none", busy_timeout: float = 30.0
) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), "signal", url, str(spool_dir), str(ROWS), handler, str(busy_timeout)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out


@pytest.mark.parametrize(
    ("sig", "returncode"), [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)]
)
def test_a_signal_flushes_every_recorded_row_and_still_ends_the_process(
    backend: Backend, open_ledger: Callable[..., Ledger], sig: int, returncode: int
) -> None:
    open_ledger().close()
    code, out = _signal_child(backend.url, backend.spool_dir, sig)
    assert code == returncode, out  # killed by the same signal, as without cachewise
    if sig == signal.SIGINT:
        assert f"KeyboardInterrupt {ROWS}" in out  # raised where it would be, after the flush
    assert len(open_ledger().calls()) == ROWS


def test_sigterm_while_the_database_is_down_spools_every_row(
    backend: Backend, outage: Outage, open_ledger: Callable[..., Ledger]
) -> None:
    open_ledger(outage.url).close()
    outage.down()
    code, out = _signal_child(outage.url, backend.spool_dir, signal.SIGTERM, busy_timeout=0.2)
    assert code == -signal.SIGTERM, out
    outage.up()
    led = open_ledger(outage.url)
    led.replay()
    assert len(led.calls()) == ROWS


def test_a_handler_the_user_set_first_still_runs_after_the_flush(
    backend: Backend, open_ledger: Callable[..., Ledger]
) -> None:
    open_ledger().close()
    code, out = _signal_child(backend.url, backend.spool_dir, signal.SIGTERM, handler="user")
    assert code == 3
    assert "user handler 15" in out
    assert len(open_ledger().calls()) == ROWS


@pytest.fixture
def fresh_handlers() -> Iterator[None]:
    ledger_signals.uninstall()  # back to the handlers found before any ledger opened
    saved = {sig: signal.getsignal(sig) for sig in ledger_signals.SIGNALS}
    yield
    ledger_signals.uninstall()
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("fresh_handlers")
def test_an_ignored_signal_stays_ignored_and_other_threads_install_nothing(
    open_ledger: Callable[..., Ledger],
) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    found: list[Any] = []
    worker = threading.Thread(target=lambda: found.append(ledger_signals.install(lambda _t: None)))
    worker.start()
    worker.join()
    assert found == [False]
    assert ledger_signals.installed() == []
    open_ledger()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    assert ledger_signals.installed() == [signal.SIGINT]


@pytest.mark.usefixtures("fresh_handlers")
def test_sigint_in_process_flushes_then_raises_keyboard_interrupt(
    open_ledger: Callable[..., Ledger],
) -> None:
    from .conftest import make_record

    signal.signal(signal.SIGINT, signal.default_int_handler)
    led = open_ledger(flush_interval=3600, batch_size=100_000)
    for i in range(40):
        led.record(make_record(i))
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert led.stats.durable == 40
    assert len(led.calls()) == 40


def test_no_handler_when_asked_not_to(open_ledger: Callable[..., Ledger], fresh_handlers: None) -> None:
    open_ledger(flush_on_signal=False)
    assert ledger_signals.installed() == []
