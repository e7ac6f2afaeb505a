"""``cachewise plan`` and ``cachewise lint``: help text, offline plans, counting through the emulator."""

from __future__ import annotations

import json
from decimal import Decimal
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


def marked(ttl: str) -> dict[str, Any]:
    body = chat(words(10))
    body["system"] = [{"type": "text", "text": words(10), "cache_control": {"type": "ephemeral", "ttl": ttl}}]
    return body


def test_lint_flags_an_invalid_ttl_with_its_path_and_the_allowed_values(tmp_path: Path) -> None:
    path = write(tmp_path, "r.json", marked("2h"))
    result = CliRunner().invoke(cli, ["lint", path])
    assert result.exit_code == 0, result.output
    assert "system.0.cache_control.ttl: [invalid-marker]" in result.output
    assert "'2h'" in result.output and "'5m' or '1h'" in result.output
    assert CliRunner().invoke(cli, ["lint", path, "--strict"]).exit_code == 1
    assert (
        CliRunner().invoke(cli, ["lint", write(tmp_path, "ok.json", marked("1h")), "--strict"]).exit_code == 0
    )


def test_lint_json_is_one_document_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    bad = write(tmp_path, "bad.json", marked("2h"))
    clean = write(tmp_path, "clean.json", chat(words(10)))
    result = CliRunner().invoke(cli, ["lint", "--json", bad, clean])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["warnings"] == 1 and doc["errors"] == 1
    assert [f["file"] for f in doc["files"]] == [bad, clean]
    (warning,) = doc["files"][0]["warnings"]
    assert warning["rule"] == "invalid-marker" and warning["severity"] == "error"
    assert warning["path"] == "system.0.cache_control.ttl" and "'5m' or '1h'" in warning["message"]
    assert doc["files"][1]["warnings"] == []
    strict = CliRunner().invoke(cli, ["lint", "--json", "--strict", bad])
    assert strict.exit_code == 1 and json.loads(strict.stdout)["warnings"] == 1
    empty = CliRunner().invoke(cli, ["lint", "--json", "--strict", clean])
    assert empty.exit_code == 0 and json.loads(empty.stdout) == {
        "warnings": 0,
        "errors": 0,
        "files": [{"file": clean, "warnings": []}],
    }


def test_lint_github_annotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "a,b.json", chat("Now: 2026-11-22T10:00:00Z.\n" + words(10)))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert "::" not in CliRunner().invoke(cli, ["lint", path]).output
    flagged = CliRunner().invoke(cli, ["lint", path, "--github"])
    lines = [line for line in flagged.output.splitlines() if line.startswith("::")]
    escaped = path.replace(",", "%2C")
    assert lines == [
        f"::warning file={escaped},line=1,title=cachewise lint::system: [volatile-content] ISO timestamp "
        "'2026-11-22T10:00:00Z' inside the cached prefix (position 0); it changes the prefix on every "
        "call: move it after the last breakpoint or make it stable"
    ]
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert CliRunner().invoke(cli, ["lint", path]).output.count("::warning file=") == 1
    assert "::" not in CliRunner().invoke(cli, ["lint", path, "--no-github"]).output
    # Under --json the annotations go to stderr and stdout stays one JSON document.
    both = CliRunner().invoke(cli, ["lint", path, "--json"])
    assert json.loads(both.stdout)["warnings"] == 1 and both.stderr.startswith("::warning file=")
    error = CliRunner().invoke(cli, ["lint", write(tmp_path, "t.json", marked("2h")), "--strict"])
    assert error.exit_code == 1 and "::error file=" in error.output


def test_lint_bad_input_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    for args in (["lint", str(broken), "--json"], ["lint", str(tmp_path / "missing.json"), "--github"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and "Error:" in result.output, result.output


def test_lint_annotations_point_at_the_line_of_the_path(tmp_path: Path) -> None:
    body = marked("2h")
    body["messages"] = [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": "yes"}]}]
    path = tmp_path / "pretty.json"
    text = json.dumps(body, indent=2)
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    expected = {
        "system.0.cache_control.ttl": 1 + next(i for i, line in enumerate(lines) if '"ttl"' in line),
        "messages.0.content.0.cache_control": 1
        + max(i for i, line in enumerate(lines) if "cache_control" in line),
    }
    result = CliRunner().invoke(cli, ["lint", str(path), "--github"])
    found = {
        line.split("::")[2].split(":")[0]: int(line.split("line=")[1].split(",")[0])
        for line in result.output.splitlines()
        if line.startswith("::error ")
    }
    assert found == expected
    stdin = CliRunner().invoke(cli, ["lint", "-", "--github"], input=text)
    assert "::error file=-,title=cachewise lint::system.0.cache_control.ttl" in stdin.output


def test_plan_shows_the_runtime_budget_estimate_counted_or_bounded(tmp_path: Path) -> None:
    """Issue 16, point 7: the estimate a runtime budget makes, from counted tokens when it can."""
    body = {**chat(words(3000)), "max_tokens": 1000}
    request = write(tmp_path, "r.json", body)
    offline = CliRunner().invoke(cli, ["plan", request, "--offline", "--json"])
    assert offline.exit_code == 0, offline.output
    bounded = json.loads(offline.output)["budget_estimate"]
    assert not bounded["counted"] and bounded["source"] == "bytes" and bounded["max_tokens"] == 1000
    argv = ["plan", request, "--api-key", "k", "--memo", str(tmp_path / "memo.sqlite3")]
    with EmulatorServer() as server:
        counted_run = CliRunner().invoke(cli, [*argv, "--base-url", server.base_url, "--json"])
        text_run = CliRunner().invoke(cli, [*argv, "--base-url", server.base_url])
    assert counted_run.exit_code == 0, counted_run.output
    counted = json.loads(counted_run.output)["budget_estimate"]
    assert counted["counted"] and counted["source"] in ("plan", "count_tokens")
    assert counted["prompt_tokens"] < bounded["prompt_tokens"] / 2  # tokens, not bytes
    assert Decimal(counted["usd"]) < Decimal(bounded["usd"])
    assert Decimal(counted["usd"]) >= Decimal(1000) * 15 / 1_000_000  # max_tokens of output at $15/M
    last = text_run.output.strip().splitlines()[-1]
    assert (
        last.startswith("Budget estimate: at most $0.") and "counted" in last and "1,000 max_tokens" in last
    )
