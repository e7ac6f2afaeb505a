"""``cachewise export``'s own surface: its help, and its options checked before any work."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cachewise.cli import cli


def test_export_help_says_what_it_does() -> None:
    result = CliRunner().invoke(cli, ["export", "--help"])
    assert result.exit_code == 0
    for text in ("parquet", "csv", "jsonl", "chunks", "--db", "--since", "--until", "--output"):
        assert text in result.output, text


def test_an_empty_ledger_exports_a_valid_empty_file(tmp_path: Path) -> None:
    from cachewise.ledger import Ledger

    db = tmp_path / "ledger.sqlite"
    Ledger(db, spool_dir=tmp_path / "spool").close()
    result = CliRunner().invoke(cli, ["export", "--db", str(db), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
