"""The comparison: the ledger's buckets against the organisation's reports, key by key.

A key is one bucket × model × group (a workspace, an API key, or nothing). Each key where the
two sides disagree is one :class:`Gap` of one kind (docs/reconcile.md, "Gap kinds"):

* ``missing_in_ledger``: the report has usage the ledger has no row for at all (calls made
  around cachewise, or a day whose records never reached this ledger);
* ``missing_in_report``: the ledger has calls the report does not (another organisation's
  key, a report not yet refreshed, calls recorded in the wrong ledger);
* ``bypassed``: both sides have the key, the report has more tokens: some calls of that
  bucket did not go through the wrapped client;
* ``ledger_extra``: both sides have the key, the ledger has more tokens;
* ``priced_differently``: the tokens agree, the cost does not: the ledger priced the calls
  under another price table (or rates) than the invoice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from ..ledger.buckets import BucketSums
from .reports import COUNTERS, Figures, GroupBy, Key

__all__ = ["EXPLANATIONS", "Gap", "GapKind", "Reconciliation", "compare"]

GapKind = Literal["missing_in_ledger", "missing_in_report", "bypassed", "ledger_extra", "priced_differently"]
EXPLANATIONS: dict[str, str] = {
    "missing_in_ledger": "the report has usage the ledger has no calls for: calls made around cachewise, "
    "or records that never reached this ledger",
    "missing_in_report": "the ledger has calls the report does not: another organisation's key, a report "
    "not refreshed yet, or calls recorded into the wrong ledger",
    "bypassed": "the report has more tokens than the ledger: some calls in this bucket bypassed "
    "the wrapped client",
    "ledger_extra": "the ledger has more tokens than the report: calls recorded twice or from "
    "another organisation",
    "priced_differently": "the tokens agree, the cost does not: the ledger priced these calls under another "
    "price table or rate than the invoice",
}
_WIDTHS = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1), "1d": timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class Gap:
    """One key where the ledger and the report disagree."""

    kind: GapKind
    starting_at: datetime
    ending_at: datetime
    model: str
    group: str | None
    report: dict[str, int]
    ledger: dict[str, int]
    report_cost: Decimal | None
    ledger_cost: Decimal | None
    ledger_calls: int

    @property
    def token_gap(self) -> dict[str, int]:
        """Report minus ledger, per counter."""
        return {name: self.report[name] - self.ledger[name] for name in COUNTERS}

    @property
    def cost_gap(self) -> Decimal | None:
        """Report minus ledger, USD (``None`` when the report has no cost for this key)."""
        if self.report_cost is None:
            return None
        return self.report_cost - (self.ledger_cost or Decimal(0))

    @property
    def explanation(self) -> str:
        return EXPLANATIONS[self.kind]

    def as_dict(self) -> dict[str, Any]:
        cost_gap = self.cost_gap
        return {
            "kind": self.kind,
            "starting_at": self.starting_at.isoformat(),
            "ending_at": self.ending_at.isoformat(),
            "model": self.model,
            "group": self.group,
            "report": self.report,
            "ledger": self.ledger,
            "token_gap": self.token_gap,
            "report_cost": _money(self.report_cost),
            "ledger_cost": _money(self.ledger_cost),
            "cost_gap": _money(cost_gap),
            "ledger_calls": self.ledger_calls,
            "explanation": self.explanation,
        }


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}" if value else "0"


@dataclass(slots=True)
class Reconciliation:
    """The outcome: the gaps, and both sides' totals over the window."""

    since: datetime
    until: datetime
    width: str
    group_by: GroupBy
    keys: int
    gaps: list[Gap]
    report_tokens: int
    ledger_tokens: int
    report_cost: Decimal | None
    ledger_cost: Decimal
    kinds: dict[str, int] = field(default_factory=dict)
    #: Which reports were read: ``usage_report`` (the legacy reports) or ``analytics``.
    source: str = "usage_report"

    @property
    def measure(self) -> Literal["cost", "tokens"]:
        """What the gap ratio is measured in: cost when the report has costs (1d), else tokens."""
        return "cost" if self.report_cost is not None else "tokens"

    @property
    def gap(self) -> Decimal:
        """The summed absolute gap: USD (``measure == "cost"``) or tokens."""
        if self.report_cost is not None:
            return sum((abs(g.cost_gap) for g in self.gaps if g.cost_gap is not None), Decimal(0))
        return Decimal(sum(sum(abs(v) for v in g.token_gap.values()) for g in self.gaps))

    @property
    def gap_ratio(self) -> Decimal:
        """The gap over the report's total (cost or tokens); 0 when both are 0."""
        base = self.report_cost if self.report_cost is not None else Decimal(self.report_tokens)
        gap = self.gap
        if not gap:
            return Decimal(0)
        return gap / base if base else Decimal("Infinity")

    def as_dict(self) -> dict[str, Any]:
        ratio = self.gap_ratio
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "source": self.source,
            "bucket_width": self.width,
            "group_by": self.group_by,
            "keys_compared": self.keys,
            "measure": self.measure,
            "gap": _money(self.gap),
            "gap_ratio": None if ratio.is_infinite() else _money(ratio),
            "report_tokens": self.report_tokens,
            "ledger_tokens": self.ledger_tokens,
            "report_cost": _money(self.report_cost),
            "ledger_cost": _money(self.ledger_cost),
            "gaps_by_kind": self.kinds,
            "gaps": [g.as_dict() for g in self.gaps],
        }


def _kind(report: Figures | None, ledger: BucketSums | None, report_cost: Decimal | None) -> GapKind | None:
    rep = report.tokens() if report is not None else dict.fromkeys(COUNTERS, 0)
    led = (
        {name: getattr(ledger, name) for name in COUNTERS}
        if ledger is not None
        else dict.fromkeys(COUNTERS, 0)
    )
    rep_any = any(rep.values()) or bool(report_cost)
    led_any = ledger is not None and (ledger.calls > 0)
    if rep_any and not led_any:
        return "missing_in_ledger"
    if led_any and not rep_any:
        return "missing_in_report" if any(led.values()) or (ledger is not None and ledger.cost) else None
    if rep != led:
        return "bypassed" if sum(rep.values()) >= sum(led.values()) else "ledger_extra"
    if report_cost is not None and ledger is not None and report_cost != ledger.cost:
        return "priced_differently"
    return None


def compare(
    ledger: Iterable[BucketSums],
    usage: Mapping[Key, Figures],
    cost: Mapping[Key, Decimal] | None,
    *,
    since: datetime,
    until: datetime,
    width: str = "1d",
    group_by: GroupBy = None,
    source: str = "usage_report",
) -> Reconciliation:
    """Every key of either side, compared.

    With the legacy reports (``source="usage_report"``) ``cost`` is daily only (the cost report
    is); the analytics API serves costs at every width.
    """
    if cost is not None and width != "1d" and source != "analytics":
        raise ValueError("the cost report has daily buckets only: compare costs at width 1d")
    sums = {(b.starting_at, b.model, b.group): b for b in ledger}
    keys = sorted(set(sums) | set(usage) | set(cost or {}), key=lambda k: (k[0], k[1], k[2] or ""))
    gaps: list[Gap] = []
    for key in keys:
        report, mine = usage.get(key), sums.get(key)
        report_cost = cost.get(key, Decimal(0)) if cost is not None else None
        kind = _kind(report, mine, report_cost)
        if kind is None:
            continue
        start, model, group = key
        gaps.append(
            Gap(
                kind=kind,
                starting_at=start,
                ending_at=start + _WIDTHS[width],
                model=model,
                group=group,
                report=report.tokens() if report is not None else dict.fromkeys(COUNTERS, 0),
                ledger={n: getattr(mine, n) for n in COUNTERS}
                if mine is not None
                else dict.fromkeys(COUNTERS, 0),
                report_cost=report_cost,
                ledger_cost=mine.cost if mine is not None else None,
                ledger_calls=mine.calls if mine is not None else 0,
            )
        )
    kinds: dict[str, int] = {}
    for gap in gaps:
        kinds[gap.kind] = kinds.get(gap.kind, 0) + 1
    return Reconciliation(
        since=since,
        until=until,
        width=width,
        group_by=group_by,
        keys=len(keys),
        gaps=gaps,
        report_tokens=sum(sum(f.tokens().values()) for f in usage.values()),
        ledger_tokens=sum(sum(getattr(b, n) for n in COUNTERS) for b in sums.values()),
        report_cost=sum(cost.values(), Decimal(0)) if cost is not None else None,
        ledger_cost=sum((b.cost for b in sums.values()), Decimal(0)),
        kinds=kinds,
        source=source,
    )
