"""The README's "wrap your client" example runs as written (against the embedded emulator)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_wrap_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    section = README.read_text().split("## Wrap your client", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    script = tmp_path / "example.py"
    script.write_text(code.group(1))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    reads = [int(line.rsplit(":", 1)[1]) for line in out.splitlines() if "cache read:" in line]
    assert reads[0] == 0
    assert all(r > 0 for r in reads[1:])
    saved = out.split("saved $", 1)[1].strip()
    assert float(saved) > 0
