"""Repricing beside the as-billed costs, privacy of stored text, and the ledger CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.ledger import CallRecord, Ledger
from cachewise.pricing import PriceBook
from cachewise.usage import Usage

from .conftest import T0, Backend, Outage, make_record

KEY = "sk-ant-api03-" + "A1b2C3d4" * 10


def _priced(book: PriceBook, i: int, **kw: object) -> CallRecord:
    return CallRecord.priced(
        usage=Usage(input_tokens=1000 + i, cache_read_input_tokens=10_000, output_tokens=500),
        model="claude-test-1",
        started_at=T0,
        request_id=f"req_{i}",
        book=book,
        **kw,  # type: ignore[arg-type]
    )


def test_reprice_keeps_as_billed_costs(
    ledger: Ledger, book: PriceBook, table_files: tuple[Path, Path]
) -> None:
    base, overlay = table_files
    ledger.record(_priced(book, 1))
    ledger.record(_priced(book, 2, modifiers=None))
    ledger.record(make_record(3, model="claude-unknown", priced=False, cost_error="no model"))
    ledger.flush()
    before = ledger.to_frame()
    negotiated = PriceBook.load(overlay, base=base)
    frame = ledger.reprice(negotiated, store=True)
    assert list(frame["repriced_table_version"].unique()) == ["test-1+negotiated-2"]
    first = frame.iloc[0]
    assert first["repriced_cost_total"] * 2 == first["cost_total"]  # the overlay halves every rate
    assert first["cost_total_delta"] == first["repriced_cost_total"] - first["cost_total"]
    unknown = frame[frame["model"] == "claude-unknown"].iloc[0]
    assert unknown["repriced_cost_total"] is None
    assert "claude-unknown" in unknown["repriced_cost_error"]
    after = ledger.to_frame()
    assert before.equals(after)  # as billed, untouched
    with ledger._store.read() as conn:
        from sqlalchemy import func, select

        from cachewise.ledger.schema import reprices

        assert conn.execute(select(func.count()).select_from(reprices)).scalar_one() == 3
    ledger.reprice(negotiated, store=True)  # same table version again: no duplicates
    with ledger._store.read() as conn:
        assert conn.execute(select(func.count()).select_from(reprices)).scalar_one() == 3


def test_prompt_text_only_when_opted_in(
    open_ledger: Callable[..., Ledger], backend: Backend, outage: Outage
) -> None:
    plain = open_ledger(outage.url, busy_timeout=0.2, retry_interval=60)
    plain.record(make_record(1, prompt=f"summarise the secret plan; key {KEY}"))
    plain.flush()
    assert plain.calls()[0].prompt is None
    outage.down()
    plain.record(make_record(2, prompt="spooled secret plan", error_type=f"auth failed for {KEY}"))
    plain.flush()
    spooled = b"".join(p.read_bytes() for p in backend.spool_dir.glob("spool-*.jsonl"))
    assert b"secret plan" not in spooled
    assert KEY.encode() not in spooled
    outage.up()
    plain.close()

    keeping = open_ledger(outage.url, store_prompts=True)
    keeping.record(make_record(3, prompt=f"keep this text; key {KEY}", tags={"who": f"Bearer {KEY}"}))
    keeping.flush()
    keeping.replay()
    rows = {r.request_id: r for r in keeping.calls()}
    assert rows["req_00000003"].prompt == "keep this text; key [REDACTED]"
    assert rows["req_00000003"].tags == {"who": "[REDACTED]"}
    assert rows["req_00000002"].error_type == "auth failed for [REDACTED]"
    if backend.name == "sqlite":
        keeping.close()
        data = b"".join(p.read_bytes() for p in backend.tmp.glob("ledger.db*"))
        assert KEY.encode() not in data
        assert b"secret plan" not in data


def test_every_ledger_command_has_help() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["ledger", "--help"])
    assert result.exit_code == 0
    for name in ("upgrade", "replay", "reprice", "info"):
        assert name in result.output
        sub = runner.invoke(cli, ["ledger", name, "--help"])
        assert sub.exit_code == 0
        assert len(sub.output.split("\n\n")[1].strip()) > 20


def test_cli_info_upgrade_replay_reprice(
    backend: Backend, open_ledger: Callable[..., Ledger], book: PriceBook, table_files: tuple[Path, Path]
) -> None:
    led = open_ledger()
    led.record(_priced(book, 1))
    led.flush()
    led.close()
    runner = CliRunner()
    base = ["ledger", "--db", backend.url, "--spool-dir", str(backend.spool_dir)]
    info = runner.invoke(cli, [*base, "info"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["calls"] == 1
    up = runner.invoke(cli, [*base, "upgrade"])
    assert up.exit_code == 0 and "applied: nothing" in up.output
    replay = runner.invoke(cli, [*base, "replay"])
    assert replay.exit_code == 0 and "replayed 0 rows" in replay.output
    out = backend.tmp / "reprice.csv"
    table, overlay = (str(p) for p in table_files)
    rep = runner.invoke(cli, [*base, "reprice", "--table", overlay, "--base", table, "--out", str(out)])
    assert rep.exit_code == 0, rep.output
    summary = json.loads(rep.output.split("wrote")[0])
    assert Decimal(summary["repriced_total"]) * 2 == Decimal(summary["billed_total"])
    assert out.read_text().count("\n") == 2


@pytest.mark.postgres
def test_cli_reports_an_unreachable_database_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["ledger", "--db", "postgresql://postgres@127.0.0.1:1/test", "--spool-dir", str(tmp_path), "info"],
    )
    assert result.exit_code == 2
    assert "is unavailable" in result.output
