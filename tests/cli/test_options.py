"""Every command and option of the ``cachewise`` tree has help text, and the shared options are
the shared ones: one ``--db`` help, one ``KEY=VALUE`` parser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.cli.options import DB_HELP, KeyValue, OutputPath
from tests.fixtures.prices import SONNET_OVERLAY as OVERLAY


def walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


COMMANDS = [(path, command) for path, command in walk(cli) if path]
OPTIONS = [
    (path, param)
    for path, command in walk(cli)
    for param in command.params
    if isinstance(param, click.Option) and param.name not in ("help", "version")
]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_help(path: tuple[str, ...], command: click.Command) -> None:
    assert command.help and len(command.help.split()) >= 5, f"cachewise {' '.join(path)} has no help text"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert command.help.split()[0] in result.output


@pytest.mark.parametrize(("path", "option"), OPTIONS, ids=[f"{' '.join(p)} {o.opts[0]}" for p, o in OPTIONS])
def test_every_option_has_help(path: tuple[str, ...], option: click.Option) -> None:
    assert option.help, f"cachewise {' '.join(path)} {option.opts[0]} has no help text"


def test_one_db_option_with_one_help_text() -> None:
    dbs = [(path, o) for path, o in OPTIONS if "--db" in o.opts]
    assert {" ".join(p) for p, _ in dbs} == {
        "ledger",
        "report",
        "calls",
        "ledger info",
        "ledger upgrade",
        "ledger replay",
        "ledger reprice",
        "ledger path",
        "ledger ingest-batch",
        "ledger rollups",
        "budget check",
        "budget baseline",
        "demo",
        "export",
        "proxy",
        "reconcile",
        "why",
        "import claude-code",
        "whatif",
    }
    prefix = DB_HELP.split("{default}")[0]
    assert all(o.help and o.help.startswith(prefix) and o.metavar == "URL" for _, o in dbs)


def test_one_key_value_parser() -> None:
    pairs = [(p, o) for p, o in OPTIONS if o.metavar and "=" in o.metavar]
    assert {f"{' '.join(p)} {o.opts[0]}" for p, o in pairs} == {
        "report --tag",
        "calls --tag",
        "budget check --tag",
        "ledger reprice --tag",
        "emulate --key",
    }
    assert all(isinstance(o.type, KeyValue) for _, o in pairs)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "--tag", "nokey"], "'nokey' is not KEY=VALUE"),
        (["report", "--tag", "=v"], "'=v' is not KEY=VALUE"),
        (["budget", "check", "--limit", "1", "--tag", "x"], "'x' is not KEY=VALUE"),
        (["ledger", "reprice", "--table", "t.yaml", "--tag", "x"], "'x' is not KEY=VALUE"),
        (["emulate", "--key", "sk-1="], "'sk-1=' is not KEY=WORKSPACE"),
    ],
)
def test_key_value_errors_read_alike(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.yaml").touch()
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_one_price_table_option() -> None:
    overlays = [(p, o) for p, o in OPTIONS if "--price-table" in o.opts]
    assert {" ".join(p) for p, _ in overlays} == {
        "prices",
        "plan",
        "ledger reprice",
        "report",
        "budget check",
        "budget baseline",
        "why",
        "import claude-code",
        "whatif",
    }
    assert len({(o.help, o.multiple, o.name) for _, o in overlays}) == 1


def test_plan_takes_an_overlay(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text('{"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": []}')
    overlay = tmp_path / "acme.yaml"
    overlay.write_text("version: acme-1\nmodels:\n  - id: claude-sonnet-4-6\n    aliases: [acme-sonnet]\n")
    result = CliRunner().invoke(cli, ["plan", str(request), "--offline", "--price-table", str(overlay)])
    assert result.exit_code == 0, result.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: x\nmodels:\n  - price: 1\n")
    result = CliRunner().invoke(cli, ["plan", str(request), "--offline", "--price-table", str(broken)])
    assert result.exit_code == 2 and str(broken) in result.output


@pytest.fixture
def priced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A ledger with one call of 1M Sonnet input tokens two days ago ($3 as billed), and an overlay
    (no `overlay: true`) that prices Sonnet input at $1.50/M."""
    from datetime import UTC, datetime, timedelta

    from cachewise.ledger import Ledger
    from cachewise.ledger.record import CallRecord
    from cachewise.pricing import PriceBook
    from cachewise.usage import Usage

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("CACHEWISE_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "priced.sqlite"
    with Ledger(db, spool_dir=tmp_path / "spool") as ledger:
        ledger.record(
            CallRecord.priced(
                usage=Usage(input_tokens=1_000_000, output_tokens=0),
                model="claude-sonnet-4-6",
                started_at=datetime.now(UTC) - timedelta(days=2),
                request_id="req_1",
                book=PriceBook.default(),
                tags={"test": "t1"},
            )
        )
        ledger.flush()
    overlay = tmp_path / "acme.yaml"
    overlay.write_text(OVERLAY)
    return db, overlay


def test_report_takes_an_overlay_as_prices_does(priced: tuple[Path, Path]) -> None:
    db, overlay = priced
    billed = CliRunner().invoke(cli, ["report", "--db", str(db), "--json"])
    assert billed.exit_code == 0, billed.output
    assert json.loads(billed.output)["totals"]["cost_total"] == "3"
    repriced = CliRunner().invoke(cli, ["report", "--db", str(db), "--json", "--price-table", str(overlay)])
    assert repriced.exit_code == 0, repriced.output
    assert json.loads(repriced.output)["totals"]["cost_total"] == "1.5"
    # the ledger keeps what was billed
    again = CliRunner().invoke(cli, ["report", "--db", str(db), "--format", "json"])
    assert json.loads(again.output)["totals"]["cost_total"] == "3"


def test_budget_check_and_baseline_take_an_overlay(priced: tuple[Path, Path], tmp_path: Path) -> None:
    db, overlay = priced
    argv = ["budget", "check", "--db", str(db), "--limit", "2", "--window", "run", "--since", "7d"]
    assert CliRunner().invoke(cli, argv).exit_code == 1  # $3 as billed > $2
    result = CliRunner().invoke(cli, [*argv, "--price-table", str(overlay)])
    assert result.exit_code == 0, result.output  # $1.50 under the overlay
    out = tmp_path / "base.json"
    argv = [
        "budget",
        "baseline",
        "--db",
        str(db),
        "--since",
        "7d",
        "-o",
        str(out),
        "--price-table",
        str(overlay),
    ]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert Decimal(json.loads(out.read_text())["total"]) == Decimal("1.5")


def test_one_output_option() -> None:
    """A command that writes a file names it --output (or -o); older spellings are aliases only."""
    outputs = [(p, o) for p, o in OPTIONS if "--output" in o.opts]
    assert {" ".join(p) for p, _ in outputs} == {
        "report",
        "plan",
        "export",
        "budget baseline",
        "ledger reprice",
    }
    assert all("-o" in o.opts and isinstance(o.type, OutputPath) for _, o in outputs)
    spellings = {name for _, o in OPTIONS for name in o.opts if name in ("--out", "--output-file", "--file")}
    assert spellings == {"--out"}  # ledger reprice's old spelling, kept as an alias of --output
    assert all("--output" in o.opts for _, o in OPTIONS if "--out" in o.opts)


def test_reprice_output_and_its_old_spelling(priced: tuple[Path, Path], tmp_path: Path) -> None:
    db, overlay = priced
    for spelling in ("--output", "-o", "--out"):
        target = tmp_path / f"rows{spelling}.csv"
        argv = ["ledger", "reprice", "--db", str(db), "--price-table", str(overlay), spelling, str(target)]
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 0, result.output
        assert "req_1" in target.read_text()


SINCE_7D = [
    ["report"],
    ["report", "--until", "now"],
    ["calls"],
    ["export", "--format", "csv"],
    ["ledger", "reprice", "--price-table", "{overlay}"],
    ["budget", "check", "--limit", "100"],
    ["budget", "baseline", "--output", "{tmp}/b.json"],
    ["whatif"],
]


@pytest.mark.parametrize("argv", SINCE_7D, ids=[" ".join(a[:2]) for a in SINCE_7D])
def test_since_7d_is_accepted_everywhere(argv: list[str], priced: tuple[Path, Path], tmp_path: Path) -> None:
    db, overlay = priced
    filled = [a.format(overlay=overlay, tmp=tmp_path) for a in argv]
    result = CliRunner().invoke(cli, [*filled, "--db", str(db), "--since", "7d"])
    assert result.exit_code == 0, result.output
    since_options = {" ".join(p) for p, o in OPTIONS if "--since" in o.opts}
    # reconcile and why --causes parse --since with the same window() (their own tests run them)
    assert since_options == {
        "whatif",
        "report",
        "calls",
        "export",
        "ledger reprice",
        "budget check",
        "budget baseline",
        "reconcile",
        "why",
    }
