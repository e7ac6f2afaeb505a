"""A scripted CI run of `cachewise budget check`: over → 1 with annotations and a step summary,
under → 0, an unpriced model → 1, bad config → 2; JUnit, JSON and baselines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cachewise.cli import cli
from tests.fixtures.frames import HAIKU, SONNET, row, write_ledger

AT = ["--since", "2026-11-01T00:00:00", "--at", "2026-11-02T23:00:00"]


def check(tmp_path: Path, db: str, config: str, *extra: str, env: dict[str, str] | None = None) -> Result:
    path = tmp_path / "pyproject.toml"
    path.write_text(config)
    base_env = {"GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": ""}
    return CliRunner().invoke(
        cli, ["budget", "check", "--db", db, "--config", str(path), *AT, *extra], env=base_env | (env or {})
    )


SONNET_CAP = """
[tool.cachewise.budget]
name = "sonnet-run"
window = "run"
model = "claude-sonnet-4-5"
limit = "{limit}"
"""


def test_over_budget_in_github_actions(tmp_path: Path, hand_db: str) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    junit = tmp_path / "budget.xml"
    result = check(tmp_path, hand_db, SONNET_CAP.format(limit="0.10"), "--junit", str(junit),
                   env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})  # fmt: skip
    assert result.exit_code == 1, result.output
    # sonnet A-D: .048 + .0135 + .051 + .0234 = .1359 > .10
    errors = [line for line in result.output.splitlines() if line.startswith("::error ")]
    assert errors == [
        "::error title=cachewise budget sonnet-run::"
        "spent $0.1359 > limit $0.10 (run, model=claude-sonnet-4-5)"
    ]
    text = summary.read_text()
    assert text.startswith("# earlier step\n")  # appended, not replaced
    assert "## cachewise budgets: ❌" in text and "| sonnet-run | run |" in text and "**fail**" in text
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    case = suite.find("testcase")
    assert case is not None and case.find("failure") is not None


def test_under_budget(tmp_path: Path, hand_db: str) -> None:
    result = check(tmp_path, hand_db, SONNET_CAP.format(limit="1.00"))
    assert result.exit_code == 0, result.output
    assert "[ok] sonnet-run: $0.1359 of $1.0000" in result.output
    assert "::error" not in result.output  # not under GitHub Actions


def test_unpriced_model_fails_closed(tmp_path: Path, hand_db: str) -> None:
    config = '[tool.cachewise.budget]\nname = "all"\nlimit = "100"\n'
    out = tmp_path / "budget.json"
    result = check(tmp_path, hand_db, config, "--json", str(out), env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1, result.output
    assert "::error title=cachewise budget all::1 call(s) cannot be priced" in result.output
    payload = json.loads(out.read_text())
    (budget,) = payload["budgets"]
    assert payload["ok"] is False
    assert budget["unpriced_calls"] == 1
    assert budget["spent"] == "0.1473"  # priced rows only; the unknown model is not $0, it fails
    assert "cannot be priced (claude-unknown-9)" in budget["failures"][0]


def test_incomplete_row_fails(tmp_path: Path) -> None:
    db = write_ledger(tmp_path / "l.db", [
        row("2026-11-01T10:00:00", HAIKU, input_tokens=100, output_tokens=10),
        row("2026-11-01T10:01:00", HAIKU, input_tokens=100) | {"status": "incomplete"},
    ])  # fmt: skip
    result = check(tmp_path, db, '[tool.cachewise.budget]\nlimit = "5"\n')
    assert result.exit_code == 1
    assert "1 call(s) have no final usage" in result.output


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ('[tool.cachewise.budget]\nlimit = "abc"\n', "tool.cachewise.budget.limit"),
        ('[tool.cachewise.budget]\nwindow = "week"\nlimit = 1\n', "tool.cachewise.budget.window"),
        ('[[tool.cachewise.budgets]]\nlimit = 1\n[[tool.cachewise.budgets]]\nlimt = 2\n',
         "tool.cachewise.budgets[1].limt"),
        ('[tool.cachewise.budget]\nname = "x"\n', "tool.cachewise.budget"),
        ("[tool.cachewise.budget\n", "<toml>"),
    ],
)  # fmt: skip
def test_bad_config_is_a_usage_error(tmp_path: Path, hand_db: str, config: str, key: str) -> None:
    result = check(tmp_path, hand_db, config)
    assert result.exit_code == 2, result.output
    assert f"pyproject.toml: {key}" in result.output


def test_run_window_needs_a_marker(tmp_path: Path, hand_db: str) -> None:
    (tmp_path / "cachewise.toml").write_text('[budget]\nlimit = "1"\n')
    result = CliRunner().invoke(
        cli, ["budget", "check", "--db", hand_db, "--config", str(tmp_path / "cachewise.toml")]
    )
    assert result.exit_code == 2
    assert "budget.window: window 'run' needs --since or --run-id" in result.output


def test_day_and_month_windows_and_tags(tmp_path: Path, hand_db: str) -> None:
    config = """
[[tool.cachewise.budgets]]
name = "haiku-day"
window = "day"
model = ["claude-haiku-4-5"]
limit = "0.0114"

[[tool.cachewise.budgets]]
name = "search-month"
window = "month"
tags = { feature = "search" }
limit = "0.07"
"""
    result = check(tmp_path, hand_db, config, "--json")
    assert result.exit_code == 1
    budgets = {b["name"]: b for b in json.loads(result.output)["budgets"]}
    assert budgets["haiku-day"]["ok"] is True  # E .0095 + F .0019 = .0114, not over
    assert budgets["haiku-day"]["since"].startswith("2026-11-02T00:00")
    assert budgets["search-month"]["spent"] == "0.0729"  # A+B+E+F > .07
    assert budgets["search-month"]["ok"] is False


def test_adhoc_limit_and_no_config(tmp_path: Path, hand_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["budget", "check", "--db", hand_db, *AT, "--limit", "0.02", "--model", HAIKU]
    )
    assert result.exit_code == 0, result.output  # haiku .0114 <= .02
    result = runner.invoke(cli, ["budget", "check", "--db", hand_db, *AT])
    assert result.exit_code == 2 and "no budget configured" in result.output


def _suite(run: str, scale: int) -> list[dict[str, object]]:
    return [
        row(f"2026-11-01T10:0{i}:00", SONNET, request_id=f"{run}-{i}", prefix="S",
            tags={"run_id": run, "test": f"t{i % 2}"},
            input_tokens=1000 * scale, ephemeral_5m_input_tokens=2000 if i == 0 else 0,
            cache_read_input_tokens=0 if i == 0 else 2000, output_tokens=100)
        for i in range(4)
    ]  # fmt: skip


def test_baseline_round_trip(tmp_path: Path) -> None:
    db = write_ledger(tmp_path / "l.db", [*_suite("main", 1), *_suite("pr", 3)])
    baseline = tmp_path / "baseline.json"
    runner = CliRunner()
    made = runner.invoke(
        cli, ["budget", "baseline", "--db", db, "--run-id", "main", "--output", str(baseline)]
    )
    assert made.exit_code == 0, made.output
    data = json.loads(baseline.read_text())
    # t0: rows 0,2: in 1000*$3/M*2 + w 2000*$3.75/M + r 2000*$.30/M + out 200*$15/M = .006+.0075+.0006+.003
    assert data["by_test"]["t0"] == "0.0171"
    assert data["cachewise_baseline"] == 1
    config = f'[tool.cachewise.budget]\nname = "vs-main"\nbaseline = "{baseline}"\ntolerance = "0.10"\n'
    same = check(tmp_path, db, config, "--run-id", "main")
    assert same.exit_code == 0, same.output
    worse = check(tmp_path, db, config, "--run-id", "pr")
    assert worse.exit_code == 1
    assert "t0: $" in worse.output and "> baseline $0.0171" in worse.output
