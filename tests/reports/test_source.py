"""LedgerSource: an existing ledger only; every format, charts included, renders from SQL sums."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachewise.errors import LedgerError
from cachewise.reports import LedgerSource, build_report, load_frame, render, sample_ledger


def test_a_missing_ledger_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    with pytest.raises(LedgerError, match="no ledger at"), LedgerSource.open(missing):
        pass
    assert not missing.exists()


def test_every_format_renders_the_same_from_sql_and_from_the_frame(tmp_path: Path) -> None:
    db = sample_ledger(tmp_path / "sample.db", days=3)
    frame = load_frame(db)
    with LedgerSource.open(db) as source:
        for fmt in ("table", "csv", "json", "markdown"):
            by = ["day", "tag:feature"]
            assert render(build_report(source, by, calls=5), fmt) == render(
                build_report(frame, by, calls=5), fmt
            )
        page = render(build_report(source, ["model"]), "html")
    assert page.count("<img") == 3 and "data:image/png;base64," in page
