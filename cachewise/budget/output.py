"""What a budget check says: terminal text, GitHub Actions annotations and step summary,
JUnit XML, JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from decimal import Decimal

from ..annotations import escape_data, escape_property
from .check import BudgetResult

__all__ = ["github_annotations", "junit_xml", "results_json", "step_summary", "text"]

_Q = Decimal("0.0001")


def _usd(value: Decimal | None) -> str:
    return "-" if value is None else f"${value.quantize(_Q)}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def text(results: Sequence[BudgetResult]) -> str:
    """One block per budget, then the verdict."""
    lines: list[str] = []
    for result in results:
        state = "ok" if result.ok else "FAIL"
        lines.append(
            f"[{state}] {result.name}: {_usd(result.spent)} of {_usd(result.limit)} "
            f"({result.window}, {result.scope}; {result.calls} calls, hit ratio {_ratio(result.hit_ratio)})"
        )
        lines += [f"    - {failure}" for failure in result.failures]
        lines += [f"    note: {note}" for note in result.notes]
    failed = sum(1 for r in results if not r.ok)
    lines.append(
        f"{failed} of {len(results)} budget(s) failed" if failed else f"all {len(results)} budget(s) within"
    )
    return "\n".join(lines) + "\n"


def github_annotations(results: Sequence[BudgetResult]) -> list[str]:
    """GitHub Actions workflow commands: one ``::error`` per failure, ``::warning`` per note."""
    lines: list[str] = []
    for result in results:
        title = escape_property(f"cachewise budget {result.name}")
        lines += [f"::error title={title}::{escape_data(failure)}" for failure in result.failures]
        lines += [f"::warning title={title}::{escape_data(note)}" for note in result.notes]
    return lines


def step_summary(results: Sequence[BudgetResult]) -> str:
    """A Markdown section for ``$GITHUB_STEP_SUMMARY``."""
    failed = [r for r in results if not r.ok]
    head = "❌ over budget or unpriced" if failed else "✅ within budget"
    lines = [
        f"## cachewise budgets: {head}",
        "",
        "| budget | window | scope | spent | limit | calls | unpriced | hit ratio | result |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.window} | {r.scope} | {_usd(r.spent)} | {_usd(r.limit)} | {r.calls} | "
            f"{r.unpriced_calls + r.no_usage_calls} | {_ratio(r.hit_ratio)} | "
            f"{'ok' if r.ok else '**fail**'} |"
        )
    for r in failed:
        lines += ["", f"**{r.name}**", *[f"- {failure}" for failure in r.failures]]
    return "\n".join(lines) + "\n\n"


def junit_xml(results: Sequence[BudgetResult]) -> str:
    """A JUnit XML report: one test case per budget, a ``<failure>`` for each that failed."""
    failures = sum(1 for r in results if not r.ok)
    suite = ET.Element("testsuite", name="cachewise.budget", tests=str(len(results)), failures=str(failures))
    suites = ET.Element("testsuites", tests=str(len(results)), failures=str(failures))
    suites.append(suite)
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="cachewise.budget", name=r.name)
        ET.SubElement(
            case, "system-out"
        ).text = f"spent {_usd(r.spent)} of {_usd(r.limit)} ({r.window}, {r.scope}); {r.calls} calls"
        if not r.ok:
            failure = ET.SubElement(case, "failure", message=r.failures[0], type="BudgetExceeded")
            failure.text = "\n".join(r.failures)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def results_json(results: Sequence[BudgetResult]) -> str:
    return (
        json.dumps({"ok": all(r.ok for r in results), "budgets": [r.as_dict() for r in results]}, indent=2)
        + "\n"
    )
