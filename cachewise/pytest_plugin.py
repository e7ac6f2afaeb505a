"""The cachewise pytest plugin: cost tables per test and per model, and budgets that fail the run.

* ``pytest --cachewise-budget 2.00`` fails the session (exit code 1) when the calls made
  during it cost more than $2.00, or when any of them cannot be priced.
* ``@pytest.mark.cachewise_budget(0.10)`` fails one test whose calls cost more than $0.10.
* The terminal summary shows cost per test and per model whenever calls were recorded.

How calls are seen: the plugin installs a session collector
(:func:`cachewise.budget.install_collector`), which registers it as a record sink
(:func:`cachewise.sinks.register`), so wrapped clients hand it every
:class:`~cachewise.ledger.CallRecord`; it points ``collector.current_test`` at the running
test, so each call is attributed to the test it was made in (from any thread). With
``--cachewise-tag-tests`` each test also runs inside ``cachewise.tags(test=<node id>)``, so
records written to a ledger carry the test too (for ``cachewise budget baseline``).

Under pytest-xdist (``pytest -n 4``) each worker collects the calls of the tests it ran and hands
them, as JSON lines, to the controller when it finishes (``workeroutput``); the controller adds
them to its own collector (a request id is counted once), so the session budget, the unpriced
check and the cost tables cover the whole run, not one worker's share. Per-test budgets are
judged on the worker that ran the test.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Hashable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
import pytest

from .budget.collector import SessionCollector, install_collector, session_collector, uninstall_collector
from .ledger.record import CallRecord
from .reports.columns import ZERO
from .reports.frames import spend, totals
from .tags import tags

__all__ = ["TEST_TAG"]

TEST_TAG = "test"
_Q = Decimal("0.0001")
_STATE = pytest.StashKey[dict[str, Any]]()
#: The key of a pytest-xdist worker's ``workeroutput`` that carries its calls to the controller.
WORKER_CALLS = "cachewise_calls"


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise pytest.UsageError(f"--cachewise-budget: {text!r} is not an amount in USD, e.g. 2.00") from None
    if not value.is_finite() or value < 0:
        raise pytest.UsageError(f"--cachewise-budget: {text!r} must be a non-negative amount in USD")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachewise", "cachewise cost budgets")
    group.addoption(
        "--cachewise-budget",
        dest="cachewise_budget",
        metavar="USD",
        default=None,
        help="fail the session when the Claude calls made during it cost more than USD (or cannot be priced)",
    )
    group.addoption(
        "--cachewise-tag-tests",
        dest="cachewise_tag_tests",
        action="store_true",
        help="run each test inside cachewise.tags(test=<node id>) so ledger rows name their test",
    )
    group.addoption(
        "--cachewise-costs",
        dest="cachewise_costs",
        action="store_true",
        help="print the per-test and per-model cost tables even without --cachewise-budget",
    )
    group.addoption(
        "--cachewise-top",
        dest="cachewise_top",
        type=int,
        default=15,
        metavar="N",
        help="tests shown in the cachewise cost table (default 15)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cachewise_budget(usd): fail this test when its Claude calls cost more than usd or cannot be priced",
    )
    raw = config.getoption("cachewise_budget")
    config.stash[_STATE] = {
        "budget": None if raw is None else _amount(str(raw)),
        "previous": session_collector(),
        "collector": None,
        "over": [],
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    state = session.config.stash[_STATE]
    state["collector"] = install_collector(SessionCollector())


def _collector(config: pytest.Config) -> SessionCollector | None:
    collector: SessionCollector | None = config.stash[_STATE]["collector"]
    return collector


def _frame(config: pytest.Config) -> pd.DataFrame | None:
    collector = _collector(config)
    if collector is None or not len(collector):
        return None
    return collector.frame()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    collector = _collector(item.config)
    if collector is not None:
        collector.current_test = item.nodeid
    try:
        if item.config.getoption("cachewise_tag_tests"):
            with tags({TEST_TAG: item.nodeid}):
                return (yield)
        return (yield)
    finally:
        if collector is not None:
            collector.current_test = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    marker = item.get_closest_marker("cachewise_budget")
    if marker is None or call.when != "call" or report.outcome == "skipped":
        return report
    if not marker.args:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.cachewise_budget needs an amount, e.g. (0.10)")
    limit = _amount(str(marker.args[0]))
    frame = _frame(item.config)
    if frame is None:
        return report
    mine = frame[
        frame["tags"].map(lambda t: isinstance(t, dict) and t.get(TEST_TAG) == item.nodeid).astype(bool)
    ]
    if not len(mine):
        return report
    summary = totals(mine)
    spent = summary["cost_total"] or ZERO
    problems = []
    if summary["unpriced_calls"]:
        problems.append(f"{summary['unpriced_calls']} call(s) cannot be priced (never counted as $0)")
    if spent > limit:
        problems.append(f"spent ${spent.quantize(_Q)} > budget ${limit}")
    if problems:
        report.outcome = "failed"
        report.longrepr = f"cachewise budget for {item.nodeid}: " + "; ".join(problems)
    return report


def _verdict(config: pytest.Config) -> list[str]:
    state = config.stash[_STATE]
    budget: Decimal | None = state["budget"]
    if budget is None:
        return []
    frame = _frame(config)
    if frame is None:
        return []
    summary = totals(frame)
    spent = summary["cost_total"] or ZERO
    problems = []
    if summary["unpriced_calls"]:
        problems.append(
            f"{summary['unpriced_calls']} call(s) cannot be priced; the session total is unknown (never $0)"
        )
    if spent > budget:
        problems.append(f"session spent ${spent.quantize(_Q)} > budget ${budget}")
    return problems


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _hand_calls_to_controller(config: pytest.Config) -> None:
    """On an xdist worker: put this worker's calls (attributed to their tests) in ``workeroutput``."""
    collector = _collector(config)
    records = collector.records() if collector is not None else []
    lines = [json.dumps(record.to_json(), separators=(",", ":")) for record in records]
    config.workeroutput[WORKER_CALLS] = lines  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the xdist controller: add a finished worker's calls to the session's collector."""
    collector = _collector(node.config)
    output = getattr(node, "workeroutput", None) or {}
    if collector is None:
        return
    for line in output.get(WORKER_CALLS, ()):
        collector.add(CallRecord.from_json(json.loads(line)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    if _is_xdist_worker(session.config):
        _hand_calls_to_controller(session.config)  # the controller judges the whole session
        return
    state = session.config.stash[_STATE]
    state["over"] = _verdict(session.config)
    if state["over"] and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    previous = state["previous"]
    if previous is not None:
        install_collector(previous)
    else:
        uninstall_collector()


def _usd(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${value.quantize(_Q)}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash[_STATE]
    if state["budget"] is None and not config.getoption("cachewise_costs"):
        return  # quiet unless asked: the tables are for sessions with a budget or --cachewise-costs
    frame = _frame(config)
    if frame is None:
        if state["budget"] is not None:
            terminalreporter.write_sep("-", "cachewise cost")
            terminalreporter.write_line(f"no Claude calls recorded; budget ${state['budget']}")
        return
    terminalreporter.write_sep("-", "cachewise cost")
    head = ["calls", "unpriced", "cost", "saved", "hit ratio"]

    def cells(record: Mapping[Hashable, Any]) -> list[str]:
        ratio = record["hit_ratio"]
        return [
            str(record["calls"]),
            str(record["unpriced_calls"]),
            _usd(record["cost_total"]),
            _usd(record["savings"]),
            "-" if ratio is None else f"{ratio:.1%}",
        ]

    top = int(config.getoption("cachewise_top"))
    by_test = spend(frame, by=[f"tag:{TEST_TAG}"])
    rows = [["test", *head]] + [
        [str(r[f"tag:{TEST_TAG}"]), *cells(r)] for r in by_test.head(top).to_dict("records")
    ]
    for line in _table(rows):
        terminalreporter.write_line(line)
    if len(by_test) > top:
        terminalreporter.write_line(f"... {len(by_test) - top} more test(s)")
    terminalreporter.write_line("")
    by_model = spend(frame, by=["model"])
    rows = [["model", *head]] + [[str(r["model"]), *cells(r)] for r in by_model.to_dict("records")]
    for line in _table(rows):
        terminalreporter.write_line(line)
    summary = totals(frame)
    budget = state["budget"]
    line = f"total {_usd(summary['cost_total'])} for {summary['calls']} call(s)"
    if summary["unpriced_calls"]:
        line += f" + {summary['unpriced_calls']} UNPRICED call(s) not in the total"
    if budget is not None:
        line += f"; budget ${budget}"
    terminalreporter.write_line(line)
    for problem in state["over"]:
        terminalreporter.write_line(f"cachewise budget FAILED: {problem}", red=True, bold=True)
