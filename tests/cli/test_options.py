"""Every command and option of the ``cachewise`` tree has help text, and the shared options are
the shared ones: one ``--db`` help, one ``KEY=VALUE`` parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.cli.options import DB_HELP, KeyValue


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
        "budget check",
        "budget baseline",
        "demo",
        "export",
        "proxy",
        "why",
        "import claude-code",
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
