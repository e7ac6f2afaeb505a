"""Check budgets against ledger rows: within, over, or unknowable (fails closed).

A budget fails when its priced spend is over its limit, when it falls short of a
baseline (cost, hit-ratio floor, write-waste ceiling), or when any call in its
window and scope cannot be counted: an unpriced row (``cost_error``) or a row
without final usage (``incomplete``: a stream cut before its last usage event).
Such rows are never counted as $0.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import BudgetConfigError, UnknownModelError
from ..pricing import PriceBook
from ..reports.frames import annotate
from ..reports.source import FrameSource, LedgerSource, Source
from .base import RUN_TAG, ZERO, window_start
from .config import BudgetSpec, read_config_text

if TYPE_CHECKING:
    from ..ledger import Ledger

__all__ = [
    "BASELINE_FORMAT",
    "RUN_TAG",
    "BudgetResult",
    "build_baseline",
    "check_budgets",
    "load_baseline",
    "scope_models",
    "scope_source",
    "select_rows",
    "window_start",
]

BASELINE_FORMAT = 1


@dataclass(frozen=True)
class BudgetResult:
    """The outcome of one budget: what was spent, and every reason it failed."""

    name: str
    window: str
    scope: str
    since: datetime | None
    until: datetime
    limit: Decimal | None
    spent: Decimal
    calls: int
    unpriced_calls: int
    no_usage_calls: int
    hit_ratio: float | None
    waste_ratio: float | None
    quarantined_calls: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "window": self.window,
            "scope": self.scope,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "limit": None if self.limit is None else str(self.limit),
            "spent": str(self.spent),
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
            "no_usage_calls": self.no_usage_calls,
            "quarantined_calls": self.quarantined_calls,
            "hit_ratio": self.hit_ratio,
            "waste_ratio": self.waste_ratio,
            "failures": list(self.failures),
            "notes": list(self.notes),
        }


def _has_tags(tags: Any, wanted: Mapping[str, str]) -> bool:
    return isinstance(tags, Mapping) and all(tags.get(key) == value for key, value in wanted.items())


def select_rows(
    frame: pd.DataFrame,
    spec: BudgetSpec,
    *,
    now: datetime,
    run_since: datetime | None = None,
    run_id: str | None = None,
    models: Collection[str] | None = None,
) -> pd.DataFrame:
    """The rows of ``frame`` in the budget's window and scope (``models``: the scope's model names
    resolved through the price table, see :func:`scope_models`)."""
    _check_run(spec, run_since, run_id)
    mask = frame["started_at"] <= pd.Timestamp(now)
    start = window_start(spec.window, now, run_since)
    if start is not None:
        mask &= frame["started_at"] >= pd.Timestamp(start)
    if spec.window == "run" and run_id is not None:
        mask &= frame["tags"].map(lambda tags: _has_tags(tags, {RUN_TAG: run_id})).astype(bool)
    if spec.models:
        mask &= frame["model"].isin(sorted(models if models is not None else spec.models))
    if spec.tags:
        mask &= frame["tags"].map(lambda tags: _has_tags(tags, spec.tags)).astype(bool)
    return frame[mask]


def _check_run(spec: BudgetSpec, run_since: datetime | None, run_id: str | None) -> None:
    if spec.window == "run" and run_since is None and run_id is None:
        raise BudgetConfigError(
            "<command line>", f"{spec.name}.window", "window 'run' needs --since or --run-id to mark the run"
        )


def scope_source(
    ledger: Ledger,
    spec: BudgetSpec,
    *,
    now: datetime,
    run_since: datetime | None = None,
    run_id: str | None = None,
    models: Collection[str] | None = None,
) -> LedgerSource:
    """The calls of ``ledger`` in the budget's window and scope, summed in SQL (the same calls as
    :func:`select_rows`: ``started_at`` up to and including ``now``)."""
    from ..ledger import Filter

    _check_run(spec, run_since, run_id)
    tags = dict(spec.tags)
    if spec.window == "run" and run_id is not None:
        tags[RUN_TAG] = run_id
    scope = sorted(models if models is not None else spec.models) if spec.models else None
    until = now + timedelta(microseconds=1)  # timestamps are kept to the microsecond
    flt = Filter(window_start(spec.window, now, run_since), until, scope, tags or None)
    return LedgerSource(ledger, flt)


def scope_models(spec: BudgetSpec, book: PriceBook | None = None) -> frozenset[str] | None:
    """The stored names of the models in ``spec``'s scope (an alias matches its dated id and back).

    :class:`BudgetConfigError` when the scope names a model no price table knows.
    """
    if not spec.models:
        return None
    try:
        return (book or PriceBook.default()).resolve_models(spec.models)
    except UnknownModelError as exc:
        raise BudgetConfigError(f"budget {spec.name!r}", "model", str(exc)) from exc


def _no_usage(rows: pd.DataFrame) -> pd.Series:
    incomplete = rows["incomplete"].astype(bool) if "incomplete" in rows.columns else False
    status = rows["status"].eq("incomplete") if "status" in rows.columns else False
    return pd.Series(incomplete | status, index=rows.index).astype(bool)


def load_baseline(path: str | Path) -> dict[str, Any]:
    """A baseline written by :func:`build_baseline` (``cachewise budget baseline``)."""
    file = Path(path)
    try:
        data = json.loads(read_config_text(file, " baseline"))
    except json.JSONDecodeError as exc:
        raise BudgetConfigError(file, "<json>", f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("cachewise_baseline") != BASELINE_FORMAT:
        raise BudgetConfigError(
            file, "cachewise_baseline", f"not a cachewise baseline (format {BASELINE_FORMAT})"
        )
    return data


def build_baseline(
    frame: pd.DataFrame | Source, *, test_tag: str = "test", now: datetime | None = None
) -> dict[str, Any]:
    """A baseline from the calls of a reference run (e.g. the main branch): cost per test and
    per model, hit ratio and write-waste ratio. Refuses calls it cannot price.

    ``frame``: the run's ledger frame, or a :class:`~cachewise.reports.source.LedgerSource` over
    the run (summed in SQL: memory follows the tests and models, not the calls)."""
    rows = FrameSource(frame) if isinstance(frame, pd.DataFrame) else frame
    summary = rows.totals()
    if summary["unpriced_calls"]:
        raise BudgetConfigError(
            "<ledger>",
            "rows",
            f"{summary['unpriced_calls']} call(s) have no price; a baseline must be complete",
        )
    by_test = rows.spend([f"tag:{test_tag}"]) if summary["calls"] else None
    by_model = rows.spend(["model"]) if summary["calls"] else None
    return {
        "cachewise_baseline": BASELINE_FORMAT,
        "created_at": (now or datetime.now(UTC)).isoformat(),
        "test_tag": test_tag,
        "calls": int(summary["calls"]),
        "total": str(summary["cost_total"] if summary["cost_total"] is not None else ZERO),
        "by_test": {} if by_test is None else {
            str(r[f"tag:{test_tag}"]): str(r["cost_total"]) for r in by_test.to_dict("records")
        },
        "by_model": {} if by_model is None else {
            str(r["model"]): str(r["cost_total"]) for r in by_model.to_dict("records")
        },
        "hit_ratio": summary["hit_ratio"],
        "waste_ratio": summary["waste_ratio"],
    }  # fmt: skip


def _check_baseline(spec: BudgetSpec, rows: Source, summary: Mapping[str, Any], out: BudgetResult) -> None:
    assert spec.baseline is not None
    base = load_baseline(spec.baseline)
    factor = 1 + spec.tolerance
    spent = summary["cost_total"] or ZERO
    allowed = Decimal(base["total"]) * factor
    if spent > allowed:
        out.failures.append(
            f"spent ${spent} > baseline ${base['total']} + {spec.tolerance:%} tolerance = ${allowed}"
        )
    tag = str(base.get("test_tag") or spec.test_tag)
    if summary["calls"]:
        per_test = rows.spend([f"tag:{tag}"])
        for record in per_test.to_dict("records"):
            test = str(record[f"tag:{tag}"])
            cost = record["cost_total"] or ZERO
            if test not in base["by_test"]:
                out.notes.append(f"{test}: ${cost}, not in the baseline")
                continue
            limit = Decimal(base["by_test"][test]) * factor
            if cost > limit:
                out.failures.append(
                    f"{test}: ${cost} > baseline ${base['by_test'][test]} + tolerance = ${limit}"
                )
    hit, floor_base = summary["hit_ratio"], base.get("hit_ratio")
    if floor_base is not None and hit is not None and hit < floor_base - spec.hit_ratio_tolerance:
        out.failures.append(
            f"hit ratio {hit:.1%} < baseline {floor_base:.1%} - {spec.hit_ratio_tolerance:.1%} tolerance"
        )
    waste, ceiling_base = summary["waste_ratio"], base.get("waste_ratio")
    if ceiling_base is not None and waste is not None and waste > ceiling_base + spec.waste_tolerance:
        out.failures.append(
            f"write waste {waste:.1%} > baseline {ceiling_base:.1%} + {spec.waste_tolerance:.1%} tolerance"
        )


def _no_usage_calls(source: LedgerSource) -> int:
    table = source.spend(["incomplete", "status"])
    mask = table["incomplete"].astype(bool) | table["status"].eq("incomplete")
    return int(table.loc[mask, "calls"].sum())


def check_budget(
    frame: pd.DataFrame | Ledger,
    spec: BudgetSpec,
    *,
    now: datetime,
    run_since: datetime | None = None,
    run_id: str | None = None,
    book: PriceBook | None = None,
    quarantine: pd.DataFrame | None = None,
) -> BudgetResult:
    """One budget over ``frame`` (a ledger frame, or an open :class:`~cachewise.ledger.Ledger`:
    then summed in SQL, the same figures); ``quarantine`` (records the database refused, in no
    total) in the budget's window and scope make it fail: their cost is unknown."""
    models = scope_models(spec, book)
    rows: Source
    if isinstance(frame, pd.DataFrame):
        selected = annotate(
            select_rows(frame, spec, now=now, run_since=run_since, run_id=run_id, models=models)
        )
        rows = FrameSource(selected)
        no_usage = int(_no_usage(selected).sum()) if len(selected) else 0
    else:
        rows = scope_source(frame, spec, now=now, run_since=run_since, run_id=run_id, models=models)
        no_usage = _no_usage_calls(rows)
    refused = (
        0
        if quarantine is None or not len(quarantine)
        else len(select_rows(quarantine, spec, now=now, run_since=run_since, run_id=run_id, models=models))
    )
    summary = rows.totals()
    spent = summary["cost_total"] if summary["cost_total"] is not None else ZERO
    result = BudgetResult(
        name=spec.name,
        window=spec.window,
        scope=spec.scope(),
        since=window_start(spec.window, now, run_since),
        until=now,
        limit=spec.limit,
        spent=spent,
        calls=int(summary["calls"]),
        unpriced_calls=int(summary["unpriced_calls"]),
        no_usage_calls=no_usage,
        hit_ratio=summary["hit_ratio"],
        waste_ratio=summary["waste_ratio"],
        quarantined_calls=refused,
    )
    if (spec.models or spec.tags) and not summary["calls"]:
        also = sorted(models - set(spec.models)) if models else []
        names = f" (also recorded as {', '.join(also)})" if also else ""
        result.notes.append(f"scope {spec.scope()}{names} matched no call in the window")
    if result.unpriced_calls:
        unpriced = sorted(set(rows.unpriced()["model"].astype(str)))
        result.failures.append(
            f"{result.unpriced_calls} call(s) cannot be priced ({', '.join(unpriced)}); "
            "they are not counted as $0: add a price overlay (--price-table) and reprice"
        )
    if refused:
        result.failures.append(
            f"{refused} call(s) were refused by the database and quarantined; their cost is unknown "
            "(`cachewise ledger info` lists them)"
        )
    if no_usage:
        result.failures.append(f"{no_usage} call(s) have no final usage (incomplete); their cost is unknown")
    if spec.limit is not None and spent > spec.limit:
        result.failures.append(f"spent ${spent} > limit ${spec.limit} ({spec.window}, {spec.scope()})")
    if spec.min_hit_ratio is not None and (summary["hit_ratio"] or 0.0) < spec.min_hit_ratio:
        result.failures.append(
            f"hit ratio {(summary['hit_ratio'] or 0.0):.1%} < floor {spec.min_hit_ratio:.1%}"
        )
    if spec.max_waste_ratio is not None and (summary["waste_ratio"] or 0.0) > spec.max_waste_ratio:
        result.failures.append(
            f"write waste {(summary['waste_ratio'] or 0.0):.1%} > ceiling {spec.max_waste_ratio:.1%}"
        )
    if spec.baseline is not None:
        _check_baseline(spec, rows, summary, result)
    return result


def check_budgets(
    frame: pd.DataFrame | Ledger,
    budgets: Sequence[BudgetSpec],
    *,
    now: datetime | None = None,
    run_since: datetime | None = None,
    run_id: str | None = None,
    book: PriceBook | None = None,
    quarantine: pd.DataFrame | None = None,
) -> list[BudgetResult]:
    """One :class:`BudgetResult` per budget, in order (model scopes resolved through ``book``).

    ``frame``: a ledger frame, or an open :class:`~cachewise.ledger.Ledger` (each budget is then
    summed in SQL over its own window and scope; memory does not grow with the calls)."""
    moment = now or datetime.now(UTC)
    return [
        check_budget(
            frame, spec, now=moment, run_since=run_since, run_id=run_id, book=book, quarantine=quarantine
        )
        for spec in budgets
    ]
