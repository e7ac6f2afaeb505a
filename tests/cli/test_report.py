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


# -- tables that fit, money and ratios in every format (issue 16, item 5) -------------------------


def _tiny_db(tmp_path: Path) -> str:
    """The hand ledger plus one haiku call whose cache read costs $0.0000001 (1E-7 as a Decimal)."""
    from tests.fixtures.frames import hand_rows, row, write_ledger

    tiny = row("2026-11-02T11:00:00", "claude-haiku-4-5", prefix="P3", tags={"feature": "search"},
               input_tokens=1, cache_read_input_tokens=1)  # fmt: skip
    return write_ledger(tmp_path / "tiny.db", [*hand_rows(), tiny])


def test_narrow_terminal_gets_the_compact_layout_and_whole_keys(hand_db: str) -> None:
    result = CliRunner().invoke(
        cli, ["report", "--db", hand_db, *WINDOW, "--by", "model,tag:feature"], env={"COLUMNS": "70"}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 70 for line in lines), result.output
    assert re.search(r"claude-sonnet-4-5\s+chat\s+2\s+\$0\.0744", result.output)  # key never cut
    assert "claude-unknown-9" in result.output and "…" not in result.output
    assert "left out to fit 70 columns" in result.output and "wasted write tok" in result.output


def test_wide_terminal_has_every_column(hand_db: str) -> None:
    result = CliRunner().invoke(cli, ["report", "--db", hand_db, *WINDOW], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "wasted write tok" in result.output and "left out to fit" not in result.output
    assert "…" not in result.output


def test_negative_money_has_its_sign_before_the_dollar(hand_db: str) -> None:
    code, out = run("report", "--db", hand_db, *WINDOW, "--by", "prefix_hash", "--format", "markdown")
    assert code == 0, out
    assert re.search(r"^\| P3 \| 2 \| .* \| -\$0\.0004 \|", out, re.M)  # E -.004 + F .0036
    assert "$-" not in out
    code, out = run("report", "--db", hand_db, *WINDOW, "--calls", "7", "--format", "markdown")
    assert "| -$0.0075 |" in out and "$-" not in out  # call A saved -$0.0075


def test_json_and_csv_money_is_plain_and_ratios_rounded(tmp_path: Path) -> None:
    db = _tiny_db(tmp_path)
    code, out = run("report", "--db", db, *WINDOW, "--format", "json", "--calls", "10")
    assert code == 0, out
    assert not re.search(r"\d[eE][-+]?\d", out), "a number in exponent notation"
    data = json.loads(out)
    tiny = next(c for c in data["calls"] if c["input_tokens"] == 1)
    assert tiny["cost_total"] == "0.0000011"  # 1 input token $0.000001 + 1 read token $0.0000001
    for record in [data["totals"], *data["groups"]]:
        for name in ("hit_ratio", "waste_ratio"):
            if record[name] is not None:
                assert record[name] == round(record[name], 4)
        price = record["effective_input_price"]
        assert price is None or len(price.partition(".")[2]) <= 6
    code, out = run("report", "--db", db, *WINDOW, "--format", "csv")
    assert not re.search(r"\d[eE][-+]?\d", out)
    haiku = next(r for r in csv.DictReader(io.StringIO(out)) if r["model"] == "claude-haiku-4-5")
    assert len(haiku["hit_ratio"].partition(".")[2]) <= 4
    assert len(haiku["effective_input_price"].partition(".")[2]) <= 6


HEADINGS = {
    "model", "calls", "unpriced", "prompt tok", "output tok", "hit ratio", "wasted write tok", "cost",
    "no-cache", "saved", "in $/MTok", "prefix", "label", "why", "started_at", "request_id", "input tok",
    "write tok", "read tok", "wasted tok",
}  # fmt: skip


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample ledger: long model names (claude-experimental-0), money over $1 and below 0."""
    from datetime import UTC, datetime

    from cachewise.reports.sample import sample_ledger

    end = datetime(2026, 11, 30, tzinfo=UTC)
    return str(sample_ledger(tmp_path_factory.mktemp("sample") / "s.db", days=3, end=end))


def _tables(out: str) -> list[tuple[list[str], list[str]]]:
    """(headings, body lines) of each table printed: the line above each ──── rule is the heading."""
    lines = out.splitlines()
    found = []
    for at, line in enumerate(lines):
        if line.strip().startswith("─"):
            body = []
            for below in lines[at + 1 :]:
                if not below.strip():
                    break
                body.append(below)
            found.append((re.split(r"\s{2,}", lines[at - 1].strip()), body))
    return found


@pytest.mark.parametrize("columns", [120, 100, 99, 80])
def test_piped_tables_show_whole_headings_keys_and_money(sample_db: str, columns: int) -> None:
    """Not a terminal: COLUMNS (else 120) wide; every heading, key and amount whole, or left out."""
    argv = ["report", "--db", sample_db, "--since", "2026-11-01", "--until", "2026-12-01", "--calls", "5"]
    result = CliRunner().invoke(cli, argv, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    tables = _tables(result.output)
    assert len(tables) == 4
    for head, body in tables:
        assert set(head) <= HEADINGS, head  # no heading cut ("prompt to", "hit rati")
        assert all(len(line) <= max(columns, 120) for line in body)
    amounts = re.findall(r"-?\$[\d,.]+", result.output)
    assert amounts and all(re.fullmatch(r"-?\$[\d,]+\.\d{4}", a) for a in amounts), amounts  # 4 decimals
    assert re.search(r"(?<![\w$])-\$0\.\d{4}", result.output)  # negative money: -$0.0300, never $-0.03
    assert "claude-experimental-0" in result.output  # the longest key, whole
    by_model = tables[0][0]
    if columns < 100:
        assert by_model == ["model", "calls", "hit ratio", "cost", "saved"]  # the compact layout
    else:
        assert "unpriced" in by_model and len(by_model) > 5  # the full layout, as many as fit
