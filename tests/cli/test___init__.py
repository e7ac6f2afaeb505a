"""The root ``cachewise`` group: its entry points (the script, ``python -m cachewise``) and
shell completion, which click provides through ``_CACHEWISE_COMPLETE``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli


def test_python_dash_m_runs_the_command_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cachewise", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: cachewise [OPTIONS] COMMAND")
    assert "report" in done.stdout


def test_python_dash_m_keeps_the_exit_code_policy(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cachewise", "report", "--db", "foo://bar"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("Error: --db 'foo://bar'")


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("bash", "complete -o nosort -F _cachewise_completion cachewise"),
        ("zsh", "#compdef cachewise"),
        ("fish", "complete --no-files --command cachewise"),
    ],
)
def test_shell_completion_script_as_documented(shell: str, expected: str) -> None:
    result = CliRunner().invoke(
        cli, [], prog_name="cachewise", env={"_CACHEWISE_COMPLETE": f"{shell}_source"}
    )
    assert result.exit_code == 0, result.output
    assert expected in result.output


def test_completion_lists_the_commands() -> None:
    env = {"_CACHEWISE_COMPLETE": "bash_complete", "COMP_WORDS": "cachewise pr", "COMP_CWORD": "1"}
    result = CliRunner().invoke(cli, [], prog_name="cachewise", env=env)
    assert result.exit_code == 0, result.output
    assert {"plain,prices", "plain,proxy"} <= set(result.output.splitlines())
