"""Small breaks of trust: in-memory ledgers, replay counts, the spool's .corrupt file, read-only opens."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.errors import LedgerError
from cachewise.ledger import Ledger

from .conftest import Backend, Outage, make_record


@pytest.mark.parametrize("url", [":memory:", Path(":memory:"), "sqlite://", "sqlite:///:memory:"])
def test_memory_ledger_creates_no_file_and_works_from_the_writer_thread(
    url: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with (
        Ledger(url, spool_dir=tmp_path / "spool", flush_interval=0.01) as led,
        Ledger(url, spool_dir=tmp_path / "spool") as other,
    ):
        assert led.label == "sqlite:///:memory:"

        def work(k: int) -> None:
            for i in range(k * 200, (k + 1) * 200):
                led.record(make_record(i))

        workers = [threading.Thread(target=work, args=(k,)) for k in range(3)]
        for w in workers:
            w.start()
        for _ in range(10):
            led.totals()  # reads while the writer thread writes
        for w in workers:
            w.join()
        assert led.flush() >= 0
        assert led.totals().calls == 600
        assert other.totals().calls == 0  # each in-memory ledger is its own database
    assert os.listdir(tmp_path) == []  # no ':memory:' file, no spool


def test_memory_ledger_cannot_be_opened_as_existing(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="in-memory ledger is always new"):
        Ledger.open_existing(":memory:", spool_dir=tmp_path)


def test_replay_reports_the_rows_restored_on_open(
    open_ledger: Callable[..., Ledger], outage: Outage, backend: Backend
) -> None:
    led = open_ledger(outage.url, busy_timeout=0.2, retry_interval=60)
    outage.down()
    for i in range(7):
        led.record(make_record(i))
    led.flush()
    led.close()
    outage.up()
    result = CliRunner().invoke(
        cli, ["ledger", "--db", outage.url, "--spool-dir", str(backend.spool_dir), "replay"]
    )
    assert result.exit_code == 0, result.output
    assert "replayed 7 rows from 1 spool files" in result.output
    assert len(open_ledger(outage.url).calls()) == 7


def test_corrupt_lines_never_follow_a_symlink_planted_for_them(
    open_ledger: Callable[..., Ledger],
    outage: Outage,
    backend: Backend,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    led = open_ledger(outage.url, busy_timeout=0.2, retry_interval=60)
    outage.down()
    for i in range(3):
        led.record(make_record(i))
    led.flush()
    led.close()
    outage.up()
    (path,) = backend.spool_dir.glob("spool-*.jsonl")
    with path.open("ab") as f:
        f.write(b"not json at all\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path.with_suffix(".jsonl.corrupt").symlink_to(victim)
    with caplog.at_level(logging.ERROR, logger="cachewise.ledger"):
        again = open_ledger(outage.url)
        result = again.replay()
    assert victim.read_text() == "precious\n"  # nothing written through the link
    assert "is a symlink, refusing to follow it" in caplog.text
    assert path.exists()  # left in place for a later replay, its rows already written once
    assert str(path) in result.left
    assert len(again.calls()) == 3


def test_read_only_commands_never_create_a_ledger(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "typo.sqlite"
    result = CliRunner().invoke(cli, ["ledger", "--db", str(missing), "--spool-dir", str(tmp_path), "info"])
    assert result.exit_code == 2  # bad input (README, exit codes)
    assert f"no ledger at {missing}" in result.output
    assert not missing.parent.exists()
    with pytest.raises(LedgerError, match=f"no ledger at {missing}"):
        Ledger.open_existing(missing, spool_dir=tmp_path)
    with pytest.raises(LedgerError, match=f"no ledger at {missing}"):
        Ledger(missing, spool_dir=tmp_path, create=False)
    assert not missing.parent.exists()


def test_open_existing_refuses_a_database_without_ledger_tables(backend: Backend, tmp_path: Path) -> None:
    if backend.name == "sqlite":
        Path(backend.url).touch()  # an empty file: not a ledger
    with pytest.raises(LedgerError, match="no cachewise ledger in"):
        Ledger.open_existing(backend.url, spool_dir=tmp_path)
    Ledger(backend.url, spool_dir=tmp_path).close()  # create it
    with Ledger.open_existing(backend.url, spool_dir=tmp_path) as led:
        assert led.info()["calls"] == 0
