"""`cachewise prices`: the table in force, one model with its source, JSON, and clear errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cachewise.cli import cli


def test_all_models_now() -> None:
    result = CliRunner().invoke(cli, ["prices", "--at", "2026-11-20"])
    assert result.exit_code == 0, result.output
    assert "claude-sonnet-4-6" in result.output
    assert "claude-opus-5-5" in result.output
    assert "table 2026-11-22" in result.output


def test_one_model_on_a_date_says_where_it_came_from() -> None:
    result = CliRunner().invoke(cli, ["prices", "--model", "claude-sonnet-5-5", "--at", "2026-10-06"])
    assert result.exit_code == 0, result.output
    before = json.loads(
        CliRunner()
        .invoke(cli, ["prices", "--model", "claude-sonnet-5-5", "--at", "2026-10-06", "--json"])
        .output
    )[0]
    after = json.loads(
        CliRunner()
        .invoke(cli, ["prices", "--model", "claude-sonnet-5-5", "--at", "2026-10-07", "--json"])
        .output
    )[0]
    assert (before["cache_read"], after["cache_read"]) == ("0.20", "0.10")
    assert "price in force since 2026-09-28" in result.output
    assert "uncertain:" in result.output


def test_json() -> None:
    result = CliRunner().invoke(
        cli, ["prices", "--model", "claude-haiku-4-5", "--at", "2026-01-01", "--json"]
    )
    (row,) = json.loads(result.output)
    assert row["model"] == "claude-haiku-4-5-20251001"
    assert row["cache_write_1h"] == "2"
    assert row["min_cache_tokens"] == 4096


def test_unknown_model_and_bad_date() -> None:
    result = CliRunner().invoke(cli, ["prices", "--model", "claude-foo-9"])
    assert result.exit_code == 2  # bad input, like every model name no table knows
    assert "no model 'claude-foo-9'" in result.output
    result = CliRunner().invoke(cli, ["prices", "--at", "yesterday"])
    assert result.exit_code == 2
    assert "--at" in result.output
