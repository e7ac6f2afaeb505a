"""The public API: every name in ``__all__`` imports, and the list stays sorted."""

from __future__ import annotations

import cachewise


def test_all_is_sorted_and_importable() -> None:
    names = [n for n in cachewise.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in cachewise.__all__:
        assert getattr(cachewise, name) is not None, name


def test_cli_commands_all_have_help() -> None:
    from click.testing import CliRunner

    from cachewise.cli import cli

    runner = CliRunner()
    for name, command in cli.commands.items():
        assert command.help, f"cachewise {name} has no help text"
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output
