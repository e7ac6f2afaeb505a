"""A budget checked over a ledger (sums in SQL) has the figures of the same check over its frame."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from cachewise.budget.check import build_baseline, check_budgets
from cachewise.budget.config import BudgetSpec
from cachewise.ledger import Ledger
from tests.ledger.conftest import backend, ledger, open_ledger  # noqa: F401  (fixtures: both databases)
from tests.ledger.test_aggregate import T0, random_ledger


def test_budgets_over_a_ledger_equal_budgets_over_its_frame(ledger: Ledger, tmp_path: Path) -> None:  # noqa: F811
    records = random_ledger(500, seed=5)
    for record in records:
        ledger.record(record)
    ledger.flush()
    frame = ledger.to_frame()
    baseline = tmp_path / "baseline.json"
    base = build_baseline(frame[frame["cost_error"].isna()], test_tag="feature")
    base["total"] = str(Decimal(base["total"]) / 2)  # half of it: the check must fail on cost
    baseline.write_text(json.dumps(base))
    now = T0 + timedelta(days=4, hours=2)
    shipped = frame[frame["cost_error"].isna() & (frame["model"] != "claude-test-1")]
    busiest = shipped["model"].value_counts().index[0]
    specs = [
        BudgetSpec(name="day", window="day", limit=Decimal("0.5")),
        BudgetSpec(name="month", window="month", limit=Decimal("1000"), min_hit_ratio=0.9),
        BudgetSpec(name="run", window="run", model=str(busiest), tags={"feature": "chat"}, limit=Decimal(1)),
        BudgetSpec(name="user", window="run", tags={"user": "u1"}, max_waste_ratio=0.01),
        BudgetSpec(name="none", window="run", tags={"user": "nobody"}, limit=Decimal(0)),
        BudgetSpec(name="base", window="run", baseline=str(baseline), test_tag="feature"),
    ]
    since = T0 + timedelta(hours=4)
    from_sql = check_budgets(ledger, specs, now=now, run_since=since)
    from_rows = check_budgets(frame, specs, now=now, run_since=since)
    assert [r.as_dict() for r in from_sql] == [r.as_dict() for r in from_rows]
    assert any(r.unpriced_calls for r in from_sql) and any(r.calls > 100 for r in from_sql)
    assert any("baseline" in failure for failure in from_sql[-1].failures)
    assert from_sql[4].notes and from_sql[4].calls == 0


def test_a_baseline_summed_in_sql_equals_the_baseline_of_the_frame(ledger: Ledger) -> None:  # noqa: F811
    from cachewise.errors import BudgetConfigError
    from cachewise.ledger import Filter
    from cachewise.reports.source import LedgerSource

    records = [r for r in random_ledger(400, seed=9) if r.cost is not None]
    for record in records:
        ledger.record(record)
    ledger.flush()
    frame = ledger.to_frame()
    moment = T0 + timedelta(days=1)
    from_rows = build_baseline(frame, test_tag="feature", now=moment)
    from_sql = build_baseline(LedgerSource(ledger, Filter()), test_tag="feature", now=moment)

    def exact(base: dict[str, object]) -> dict[str, object]:  # amounts as Decimal: "1.50" == "1.5"
        out = dict(base)
        for name in ("by_test", "by_model"):
            out[name] = {k: Decimal(v) for k, v in base[name].items()}  # type: ignore[attr-defined]
        out["total"] = Decimal(str(base["total"]))
        return out

    assert exact(from_sql) == exact(from_rows)
    assert len(from_sql["by_test"]) >= 2 and len(from_sql["by_model"]) >= 2
    assert Decimal(from_sql["total"]) == sum((r.cost.cost_total for r in records if r.cost), Decimal(0))
    unpriced = next(r for r in random_ledger(400, seed=9) if r.cost is None)
    ledger.record(unpriced)
    ledger.flush()
    try:
        build_baseline(LedgerSource(ledger, Filter()), test_tag="feature")
    except BudgetConfigError as exc:
        assert "1 call(s) have no price" in str(exc)
    else:
        raise AssertionError("a baseline over an unpriced call must be refused")
