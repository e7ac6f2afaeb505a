"""``cachewise.progress``: a rich bar on a terminal, nothing otherwise."""

from __future__ import annotations

import sys

import pytest

from cachewise import progress as module


def test_progress_is_quiet_when_stdout_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert not module.show_progress()  # pytest captures stdout: not a TTY
    with module.progress("exporting", 10) as advance:
        advance(10)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_draws_a_bar_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(module, "show_progress", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with module.progress("exporting", 10) as advance:
        advance(10)
    assert "exporting" in capsys.readouterr().err
