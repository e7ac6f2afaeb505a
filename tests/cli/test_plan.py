"""``cachewise plan`` and ``cachewise lint``: help text, offline plans, counting through the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.emulator import EmulatorServer
from tests.strategies import words


def write(tmp_path: Path, name: str, body: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


def chat(system: str) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "system": system,
        "messages": [{"role": "user", "content": "hello"}],
    }


@pytest.mark.parametrize("command", ["plan", "lint"])
def test_commands_have_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and len(result.output.split("\n")[2]) > 20


def test_plan_offline_explains_and_writes_the_body(tmp_path: Path) -> None:
    out = tmp_path / "planned.json"
    result = CliRunner().invoke(
        cli, ["plan", write(tmp_path, "r.json", chat(words(3000))), "--offline", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Breakpoints:" in result.output and "system.0" in result.output
    planned = json.loads(out.read_text())
    assert planned["system"][0]["cache_control"]["type"] == "ephemeral"


def test_plan_needs_a_key_or_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["plan", write(tmp_path, "r.json", chat("x"))])
    assert result.exit_code == 2 and "--offline" in result.output


def test_plan_counts_through_the_emulator(tmp_path: Path) -> None:
    # ~600 words: the offline bounds straddle the 1,024 minimum, so count_tokens decides.
    body = chat(words(600))
    memo = tmp_path / "memo.sqlite3"
    with EmulatorServer() as server:
        result = CliRunner().invoke(
            cli,
            [
                "plan",
                write(tmp_path, "r.json", body),
                "--base-url",
                server.base_url,
                "--api-key",
                "k",
                "--memo",
                str(memo),
                "--json",
            ],
        )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["count_calls"] >= 1
    assert all(b["tokens"] >= data["minimum"] for b in data["breakpoints"])


def test_lint_reports_paths_and_strict_exit(tmp_path: Path) -> None:
    body = chat("Now: 2026-11-22T10:00:00Z. " + words(10))
    path = write(tmp_path, "r.json", body)
    result = CliRunner().invoke(cli, ["lint", path])
    assert result.exit_code == 0 and "system: [volatile-content]" in result.output
    assert CliRunner().invoke(cli, ["lint", path, "--strict"]).exit_code == 1
    clean = write(tmp_path, "c.json", chat(words(10)))
    assert "no cache busters" in CliRunner().invoke(cli, ["lint", clean]).output
