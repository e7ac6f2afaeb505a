"""`cachewise demo` tells the truth about time and tags: rows end by now, its "next:" hint shows the
demo's own hit ratios, and its calls carry a ``feature`` tag (issue 16, item 4)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.demo import WORKLOADS
from cachewise.demo.runner import FEATURES, span
from cachewise.ledger import Ledger

ENV = {"ANTHROPIC_API_KEY": ""}


@dataclass(frozen=True)
class Demo:
    db: Path
    output: str
    before: datetime
    after: datetime


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    before = datetime.now(UTC)
    result = CliRunner().invoke(cli, ["demo", "--db", str(db)], env=ENV)
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output
    return Demo(db, result.output, before, after)


def _session(output: str) -> str:
    found = re.search(r"\(session ([0-9a-f]+)\)", output)
    assert found, output
    return found.group(1)


def test_rows_end_by_now_and_span_the_afternoon(demo: Demo) -> None:
    with Ledger(demo.db) as ledger:
        times = [row.started_at for row in ledger.calls()]
    assert max(times) <= demo.after
    # Both runs replay the afternoon over the half hour before the demo (rounded down to the minute).
    earliest = demo.before.replace(second=0, microsecond=0) - timedelta(seconds=span(WORKLOADS) + 60)
    assert min(times) >= earliest


def test_report_since_today_agrees_with_the_day_budget(demo: Demo) -> None:
    session = _session(demo.output)
    runner = CliRunner()
    scope = ["--db", str(demo.db), "--tag", f"demo_session={session}"]
    report = runner.invoke(cli, ["report", *scope, "--since", "today", "--format", "json"], env=ENV)
    assert report.exit_code == 0, report.output
    budget = runner.invoke(
        cli, ["budget", "check", *scope, "--limit", "1000", "--window", "day", "--json"], env=ENV
    )
    assert budget.exit_code == 0, budget.output
    (day,) = json.loads(budget.output)["budgets"]
    totals = json.loads(report.output)["totals"]
    assert day["calls"] == totals["calls"]
    assert day["spent"] == totals["cost_total"]


def _demo_hit_ratios(output: str) -> dict[str, int]:
    """``model -> hit ratio %`` from the demo's table (its rows end with ``NN.N%  NN%``)."""
    rows = re.findall(r"^(claude-\S+) .* (\d+)%$", output, flags=re.MULTILINE)
    assert len(rows) == 3, output
    return {model: int(pct) for model, pct in rows}


def test_next_hint_reproduces_the_demo_hit_ratios(demo: Demo) -> None:
    line = next(line for line in demo.output.splitlines() if line.startswith("next: "))
    argv = shlex.split(line.removeprefix("next: "))
    assert argv[:2] == ["cachewise", "report"]
    report = CliRunner().invoke(cli, [*argv[1:], "--format", "json"], env=ENV)
    assert report.exit_code == 0, report.output
    groups = json.loads(report.output)["groups"]
    shown = {g["model"]: round(float(g["hit_ratio"]) * 100) for g in groups}
    assert shown == _demo_hit_ratios(demo.output)
    assert sum(g["calls"] for g in groups) == 33  # the cachewise run only, not both runs summed


def test_calls_carry_a_feature_tag(demo: Demo) -> None:
    with Ledger(demo.db) as ledger:
        rows = ledger.calls()
    assert {(r.tags["workload"], r.tags["feature"]) for r in rows} == set(FEATURES.items())
    report = CliRunner().invoke(
        cli, ["report", "--db", str(demo.db), "--by", "tag:feature", "--format", "json"], env=ENV
    )
    assert report.exit_code == 0, report.output
    features = {g["tag:feature"] for g in json.loads(report.output)["groups"]}
    assert features == set(FEATURES.values())
