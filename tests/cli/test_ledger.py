"""``cachewise ledger``: ``--db`` before or after the subcommand, ``ledger path``, and the one-line
hint a read-only command gives when the default ledger is missing but the demo recorded its own."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.ledger import Ledger
from tests.fixtures.prices import SONNET_OVERLAY as OVERLAY


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("CACHEWISE_DB", raising=False)
    monkeypatch.delenv("CACHEWISE_DEMO_DB", raising=False)
    return tmp_path


@pytest.mark.parametrize("where", ["before", "after"])
def test_db_before_or_after_the_subcommand(where: str, home: Path) -> None:
    db = home / "led.sqlite"
    Ledger(db, spool_dir=home / "spool").close()
    argv = ["ledger", "--db", str(db), "info"] if where == "before" else ["ledger", "info", "--db", str(db)]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["url"] == f"sqlite:///{db}"


def test_db_after_the_subcommand_wins(home: Path) -> None:
    db = home / "led.sqlite"
    Ledger(db, spool_dir=home / "spool").close()
    result = CliRunner().invoke(cli, ["ledger", "--db", str(home / "nope.sqlite"), "info", "--db", str(db)])
    assert result.exit_code == 0, result.output


def test_path_prints_the_default_ledger(home: Path) -> None:
    result = CliRunner().invoke(cli, ["ledger", "path"])
    assert result.exit_code == 0, result.output
    expected = home / "data" / "cachewise" / "ledger.db"
    assert result.output.splitlines()[0] == str(expected)
    assert "no ledger there yet" in result.output
    assert not expected.exists()


def test_path_follows_cachewise_db_and_db(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEWISE_DB", str(home / "env.sqlite"))
    assert CliRunner().invoke(cli, ["ledger", "path"]).output.splitlines()[0] == str(home / "env.sqlite")
    result = CliRunner().invoke(cli, ["ledger", "path", "--db", "postgresql://u:secret@h/db"])
    assert result.output.strip() == "postgresql+psycopg://u:***@h/db"


def test_report_after_the_demo_says_how_to_see_it(home: Path) -> None:
    demo = home / "data" / "cachewise" / "demo.sqlite"
    demo.parent.mkdir(parents=True)
    Ledger(demo, spool_dir=home / "spool").close()
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 2
    assert f"the demo recorded into {demo}: cachewise report --db {demo}" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.fixture
def priced_db(home: Path) -> Path:
    from datetime import UTC, datetime, timedelta

    from cachewise.ledger.record import CallRecord
    from cachewise.pricing import PriceBook
    from cachewise.usage import Usage

    db = home / "priced.sqlite"
    with Ledger(db, spool_dir=home / "spool") as ledger:
        ledger.record(
            CallRecord.priced(
                usage=Usage(input_tokens=1_000_000, output_tokens=0),
                model="claude-sonnet-4-6",
                started_at=datetime.now(UTC) - timedelta(days=2),
                request_id="req_1",
                book=PriceBook.default(),
            )
        )
        ledger.flush()
    return db


def test_reprice_takes_an_overlay_as_prices_does(priced_db: Path, home: Path) -> None:
    overlay = home / "acme.yaml"
    overlay.write_text(OVERLAY)  # no `overlay: true`: the same file `cachewise prices --price-table` takes
    out = home / "rows.csv"
    argv = ["ledger", "reprice", "--db", str(priced_db), "--price-table", str(overlay)]
    result = CliRunner().invoke(cli, [*argv, "--since", "7d", "--output", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[: result.output.rindex("}") + 1])
    assert summary["calls"] == 1
    assert Decimal(summary["repriced_total"]) == Decimal("1.5")
    assert summary["table_version"].endswith("+acme-2026-11")
    assert out.is_file()
    prices = CliRunner().invoke(
        cli, ["prices", "--price-table", str(overlay), "--model", "claude-sonnet-4-6"]
    )
    assert prices.exit_code == 0 and " 1.5 " in prices.output


def test_reprice_window_in_days_excludes_older_calls(priced_db: Path, home: Path) -> None:
    overlay = home / "acme.yaml"
    overlay.write_text(OVERLAY)
    argv = ["ledger", "reprice", "--db", str(priced_db), "--price-table", str(overlay), "--since", "1d"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert '"calls": 0' in result.output


@pytest.mark.parametrize(
    "extra",
    [["--since", "2030-01-01", "--until", "2020-01-01"], ["--since", "1d", "--until", "7d"]],
)
def test_reprice_until_before_since_is_rejected(extra: list[str], priced_db: Path, home: Path) -> None:
    overlay = home / "acme.yaml"
    overlay.write_text(OVERLAY)
    argv = ["ledger", "reprice", "--db", str(priced_db), "--price-table", str(overlay), *extra]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2
    assert "Invalid value for '--since'" in result.output and "is after --until" in result.output


def test_reprice_needs_prices(priced_db: Path) -> None:
    result = CliRunner().invoke(cli, ["ledger", "reprice", "--db", str(priced_db)])
    assert result.exit_code == 2
    assert "--price-table OVERLAY or --table FILE" in result.output


def test_every_doc_names_the_one_default_ledger(home: Path) -> None:
    """README and docs/ name one default ledger file, the one `cachewise ledger path` prints."""
    root = Path(__file__).resolve().parents[2]
    texts = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    names: set[str] = set()
    for doc in texts:
        names |= set(re.findall(r"cachewise/([\w-]+\.(?:db|sqlite3?))\b", doc.read_text(encoding="utf-8")))
    # the ledger, the demo's own, and the token-count memo (not a ledger)
    assert names == {"ledger.db", "demo.sqlite", "tokens.sqlite3"}
    printed = CliRunner().invoke(cli, ["ledger", "path"]).output.splitlines()[0]
    assert Path(printed).name == "ledger.db"


def test_reprice_is_quiet_off_a_terminal_and_draws_a_bar_with_the_call_count_when_forced(
    priced_db: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay = home / "acme.yaml"
    overlay.write_text(OVERLAY)
    argv = ["ledger", "reprice", "--db", str(priced_db), "--price-table", str(overlay)]
    monkeypatch.delenv("CACHEWISE_PROGRESS", raising=False)
    quiet = CliRunner().invoke(cli, argv)
    assert quiet.exit_code == 0, quiet.output
    assert "repricing" not in quiet.stderr
    monkeypatch.setenv("CACHEWISE_PROGRESS", "1")
    shown = CliRunner().invoke(cli, argv)
    assert shown.exit_code == 0, shown.output
    assert "repricing" in shown.stderr and "1/1" in shown.stderr  # the bar's total is the call count
    assert json.loads(shown.stdout)["calls"] == 1  # stdout stays parseable


def test_spool_replay_draws_a_bar_over_the_spooled_bytes_when_forced(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cachewise.ledger.spool import Spool
    from cachewise.ledger.store import Store
    from tests.ledger.conftest import make_record

    db = home / "spooled.sqlite"
    Ledger(db, spool_dir=home / "spool").close()
    store = Store(db)
    spool = Spool(home / "spool", store.key, store.label)
    spool.append([make_record(i) for i in range(2500)])
    spool.close()
    store.dispose()
    size = sum(p.stat().st_size for p in (home / "spool").glob("spool-*.jsonl"))
    monkeypatch.setenv("CACHEWISE_PROGRESS", "1")
    result = CliRunner().invoke(
        cli, ["ledger", "--db", str(db), "--spool-dir", str(home / "spool"), "replay"]
    )
    assert result.exit_code == 0, result.output
    assert "replaying the spool" in result.stderr
    assert f"{size}/{size}" in result.stderr  # every spooled byte was read back
    assert "replayed 2500 rows" in result.stdout
    with Ledger(db, spool_dir=home / "spool") as led:
        assert led.totals().calls == 2500
