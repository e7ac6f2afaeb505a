"""`cachewise report` in every format, on a real ledger, through click's CliRunner."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli

WINDOW = ["--since", "2026-10-01", "--until", "2026-12-01"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("command", [["report"], ["budget"], ["budget", "check"], ["budget", "baseline"]])
def test_help_text(command: list[str]) -> None:
    code, out = run(*command, "--help")
    assert code == 0
    assert "Usage:" in out and len(out.splitlines()) > 4


def test_table(hand_db: str) -> None:
    code, out = run("report", "--db", hand_db, *WINDOW)
    assert code == 0, out
    assert "spend: $0.1473 (INCOMPLETE: unpriced calls left out)" in out
    assert "saved: $0.0347" in out
    assert "UNPRICED: 1 calls, 3,000 prompt and 100 output tokens" in out
    assert "claude-unknown-9" in out and "Costliest prefix families" in out


def test_csv_is_exact(hand_db: str) -> None:
    code, out = run("report", "--db", hand_db, *WINDOW, "--by", "model,tag:feature", "--format", "csv")
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {(r["model"], r["tag:feature"]) for r in rows} >= {("claude-sonnet-4-5", "chat")}
    sonnet_chat = next(r for r in rows if r["model"] == "claude-sonnet-4-5" and r["tag:feature"] == "chat")
    assert sonnet_chat["cost_total"] == "0.0744"  # C .051 + D .0234
    unknown = next(r for r in rows if r["model"] == "claude-unknown-9")
    assert unknown["cost_total"] == "" and unknown["complete"] == "False"


def test_json(hand_db: str) -> None:
    code, out = run("report", "--db", hand_db, *WINDOW, "--format", "json", "--by", "day")
    assert code == 0, out
    data = json.loads(out)
    assert data["complete"] is False
    assert data["totals"]["cost_total"] == "0.1473"
    assert data["totals"]["wasted_write_tokens"] == 8000
    assert [g["day"][:10] for g in data["groups"]] == ["2026-11-01", "2026-11-02"]
    assert data["unpriced"][0]["calls"] == 1
    assert data["prefix_families"][0]["prefix_hash"] == "P2"


def test_markdown(hand_db: str) -> None:
    code, out = run("report", "--db", hand_db, *WINDOW, "--format", "markdown", "--by", "tag:feature")
    assert code == 0, out
    assert out.startswith("# cachewise cost report")
    assert "## Spend and savings by tag:feature" in out
    assert re.search(r"^\| search \| 4 \| 0 \|", out, re.M)
    assert "## Unpriced calls (not in any total)" in out


def test_html_self_contained(hand_db: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, out = run("report", "--db", hand_db, *WINDOW, "--format", "html", "--output", str(target))
    assert code == 0, out
    page = target.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    assert "INCOMPLETE" in page


def test_html_without_matplotlib_has_the_tables_and_says_how_to_get_charts(
    hand_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib...` now fails
    target = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["report", "--db", hand_db, *WINDOW, "--format", "html", "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    page = target.read_text()
    assert "data:image/png" not in page
    assert "pip install &#x27;cachewise[charts]&#x27;" in page
    assert "<h2>Spend and savings by model</h2><table>" in page and "INCOMPLETE" in page
    assert "pip install 'cachewise[charts]'" in result.output  # said on stderr too


def test_output_file_and_filters(hand_db: str, tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    code, _ = run("report", "--db", hand_db, *WINDOW, "--tag", "feature=search", "--format", "json",
                  "--output", str(target))  # fmt: skip
    assert code == 0
    data = json.loads(target.read_text())
    assert data["complete"] is True
    assert data["totals"]["cost_total"] == "0.0729"  # A+B+E+F


def test_bad_arguments(hand_db: str) -> None:
    code, out = run("report", "--db", hand_db, "--since", "last tuesday")
    assert code == 2 and "not a window" in out
    code, out = run("report", "--db", hand_db, *WINDOW, "--by", "colour")
    assert code == 2 and "cannot group by" in out
    code, out = run("report", "--db", hand_db, "--tag", "nokey")
    assert code == 2 and "KEY=VALUE" in out


def test_missing_ledger_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    code, out = run("report", "--db", str(missing))
    assert code == 2 and "no ledger at" in out
    assert not missing.exists()  # not created empty
    result = CliRunner().invoke(
        cli, ["budget", "check", "--db", str(missing), "--limit", "1", "--since", "1h"]
    )
    assert result.exit_code == 2 and "no ledger at" in result.output


def test_call_detail(hand_db: str) -> None:
    code, out = run("report", "--db", hand_db, *WINDOW, "--calls", "2", "--format", "markdown")
    assert code == 0, out
    assert "## Most recent 2 calls" in out
    assert "| 2026-11-02 12:00:00 | req_2026-11-02T12:00:00_claude-unknown-9 | claude-unknown-9 | - |" in out
    code, out = run("report", "--db", hand_db, *WINDOW, "--calls", "3", "--format", "json")
    calls = json.loads(out)["calls"]
    assert [c["cost_total"] for c in calls] == [None, "0.0019", "0.0095"]  # newest first: G, F, E
