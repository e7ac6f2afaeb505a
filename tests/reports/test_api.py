"""Public names of the report and budget modules: sorted ``__all__``, importable, documented."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "cachewise.reports",
    "cachewise.reports.charts",
    "cachewise.reports.columns",
    "cachewise.reports.frames",
    "cachewise.reports.html",
    "cachewise.reports.records",
    "cachewise.reports.render",
    "cachewise.reports.sample",
    "cachewise.reports.source",
    "cachewise.reports.waste",
    "cachewise.reports.window",
    "cachewise.budget",
    "cachewise.budget.check",
    "cachewise.budget.collector",
    "cachewise.budget.config",
    "cachewise.budget.output",
    "cachewise.budget.runtime",
    "cachewise.pytest_plugin",
    "cachewise.cli.report",
    "cachewise.cli.budget",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__
    names = list(module.__all__)
    # ruff RUF022 order: CONSTANTS, then Classes, then functions
    assert names == sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[:1].isupper() else 2, n))
    for item in names:
        assert hasattr(module, item), f"{name}.{item}"


def test_commands_registered() -> None:
    from cachewise.cli import COMMANDS

    assert ("report", "report") in COMMANDS
    assert ("budget", "budget") in COMMANDS


def test_parse_when() -> None:
    from datetime import UTC, datetime

    from cachewise.reports import parse_when

    now = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    assert parse_when("7d", now) == datetime(2026, 11, 15, 10, 30, tzinfo=UTC)
    assert parse_when("90m", now) == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert parse_when("today", now) == datetime(2026, 11, 22, tzinfo=UTC)
    assert parse_when("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_when("2026-11-01T12:00+02:00", now) == datetime(2026, 11, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a window"):
        parse_when("yesterday-ish", now)
