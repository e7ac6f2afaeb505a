"""Bad usage on the command line: exit 2 and an error naming the option, never a traceback (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli


def test_demo_db_given_a_url_is_a_usage_error_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite:///demo.sqlite", "postgresql://user@localhost/demo"):
        result = CliRunner().invoke(cli, ["demo", "--db", url])
        assert result.exit_code == 2, result.output
        assert "--db" in result.output and "URL" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["proxy", "emulate"])
def test_a_port_out_of_range_is_a_usage_error(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--port", "99999"])
    assert result.exit_code == 2, result.output
    assert "--port" in result.output and "99999" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
