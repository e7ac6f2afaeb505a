"""Replay a workload on a fresh emulator under one caching strategy and read the emulator's bill.

Strategies:

* ``planner``   — cachewise's :class:`~cachewise.planner.CachePlanner` (counts through the emulator's
  ``count_tokens``, learns from each response with ``observe``);
* ``none``      — no ``cache_control`` at all;
* ``automatic`` — Anthropic's automatic caching (top-level ``cache_control``);
* ``static``    — a marker on the last system block and on the last message block;
* ``oracle``    — :class:`~cachewise.workloads.oracle.Oracle`, an offline plan that knows the
  calls to come (the bound "share of the achievable savings" is measured against);
* ``learnable`` — the same oracle planning each family's first call without the hour
  (``blind_first=True``): the part of the bound a planner that learns from the past can reach.

The emulator's virtual clock is advanced to each call's time and the planner reads the same clock.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anthropic
import httpx2

from ..emulator import Emulator, EmulatorServer, EmulatorTransport
from ..planner import CachePlanner
from ..progress import progress, show_progress
from ..tokens import TokenCounter, TokenMemo
from .oracle import Oracle
from .script import Workload, play
from .suite import SUITE

__all__ = [
    "HISTORY_GAP_SECONDS",
    "STRATEGIES",
    "Result",
    "markdown",
    "planned_calls",
    "run",
    "run_suite",
    "savings_table",
    "share",
    "static_markers",
]

STRATEGIES = ("planner", "none", "automatic", "static", "oracle", "learnable")


@dataclass(frozen=True, slots=True)
class Result:
    workload: str
    strategy: str
    total: Decimal
    input_cost: Decimal  # the total without output: what caching can change
    requests: int
    count_calls: int
    seconds: float


def static_markers(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with a 5-minute marker on the system prompt and on the last message block."""
    out = dict(body)
    marker = {"type": "ephemeral"}
    system = out.get("system")
    if isinstance(system, str) and system:
        out["system"] = [{"type": "text", "text": system, "cache_control": marker}]
    messages = [dict(m) for m in out["messages"]]
    last = messages[-1]
    content = last["content"]
    if isinstance(content, str):
        last["content"] = [{"type": "text", "text": content, "cache_control": marker}]
    else:
        last["content"] = [*content[:-1], {**content[-1], "cache_control": marker}]
    out["messages"] = messages
    return out


@contextmanager
def _client(emulator: Emulator, server: bool) -> Iterator[anthropic.Anthropic]:
    if server:
        with EmulatorServer(emulator) as running:
            client = anthropic.Anthropic(api_key="bench", base_url=running.base_url, max_retries=0)
            try:
                yield client
            finally:
                client.close()
    else:
        http = httpx2.Client(transport=EmulatorTransport(emulator))
        client = anthropic.Anthropic(
            api_key="bench", base_url="http://emulator.local", http_client=http, max_retries=0
        )
        try:
            yield client
        finally:
            client.close()


def planned_calls(workload: Workload, limit: int | None = None) -> int:
    """How many calls a replay of ``workload`` makes (its script run without replies), at most ``limit``."""
    count = 0
    for _call in workload.calls():
        count += 1
        if limit is not None and count >= limit:
            break
    return count


#: Between a ``history`` and the workload replayed after it: a day, so no entry of the history is live.
HISTORY_GAP_SECONDS = 24 * 3600.0


def run(
    workload: Workload,
    strategy: str,
    *,
    server: bool = False,
    limit: int | None = None,
    history: Workload | None = None,
) -> Result:
    """Replay ``workload`` (its first ``limit`` calls) under ``strategy`` on a fresh emulator.

    ``server=True`` goes over real HTTP (:class:`~cachewise.emulator.EmulatorServer`) instead of
    the in-process transport. With ``history`` (the ``planner`` strategy only), the same planner
    first plans that other traffic, a day earlier on the same clock, as a process that has been
    running since: the result bills and counts the workload alone.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; pick one of {', '.join(STRATEGIES)}")
    if history is not None and strategy != "planner":
        raise ValueError(f"a history is replayed for the planner only, not for {strategy!r}")
    emulator = Emulator()
    started = time.perf_counter()
    with _client(emulator, server) as client:
        counter = TokenCounter(client, memo=TokenMemo(None))
        planner = CachePlanner(counter, book=emulator.book, clock=emulator.now)
        oracle = (
            Oracle(
                list(itertools.islice(workload.calls(), limit)),
                emulator,
                blind_first=strategy == "learnable",
            )
            if strategy in ("oracle", "learnable")
            else None
        )

        def send(body: dict[str, Any]) -> Any:
            plan = None
            if strategy == "planner":
                plan = planner.plan(body)
                body = plan.request
            elif strategy == "automatic":
                body = {**body, "cache_control": {"type": "ephemeral"}}
            elif strategy == "static":
                body = static_markers(body)
            elif oracle is not None:
                body = oracle.plan(body, emulator.now())
            message = client.messages.create(**body)
            if plan is not None:
                planner.observe(plan, message.usage, emulator.now())
            return message

        if history is not None:
            play(history, send, emulator)
            emulator.advance(HISTORY_GAP_SECONDS)
            emulator.billing.reset()  # the history's rows are not the workload's bill
        counted_before = counter.calls
        total = planned_calls(workload, limit) if show_progress() else None
        with progress(f"replaying {workload.name} ({strategy})", total) as advance:

            def counted(body: dict[str, Any]) -> Any:
                reply = send(body)
                advance(1)
                return reply

            requests = play(workload, counted, emulator, limit=limit)
    rows = emulator.billing.rows()
    input_cost = sum((r.cost.total - r.cost.output for r in rows if r.cost is not None), Decimal(0))
    return Result(
        workload.name,
        strategy,
        emulator.bill_total(),
        input_cost,
        requests,
        counter.calls - counted_before,
        time.perf_counter() - started,
    )


def run_suite(scale: int = 1, *, server: bool = False) -> list[list[Result]]:
    """Every :data:`~cachewise.workloads.suite.SUITE` workload at ``scale`` under every strategy."""
    return [[run(make(scale), s, server=server) for s in STRATEGIES] for make in SUITE]


def share(results: list[Result], bound: str = "oracle") -> Decimal | None:
    """The planner's share of the achievable savings: (none − planner) / (none − oracle), input side.

    ``None`` when the oracle saves nothing (there is nothing to achieve). ``bound="learnable"``
    measures against the learnable bound instead.
    """
    by = {r.strategy: r.input_cost for r in results}
    room = by["none"] - by[bound]
    return (by["none"] - by["planner"]) / room if room > 0 else None


def _pct(value: Decimal) -> str:
    return f"{value:+.0%}".replace("-", "−") if value else "0%"


def savings_table(rows: list[list[Result]]) -> str:
    """The README's table: input side (bill minus output, USD) per strategy and the planner's share.

    The emulator's reply, hence its output tokens, depends on the request bytes, so the output
    part differs slightly between strategies; caching only changes the input side.
    """
    lines = [
        "| workload | calls | cachewise planner | no caching | automatic caching | system + last message "
        "| oracle bound | learnable bound | share of the bound | share of the learnable "
        "| vs none | vs automatic | count_tokens calls/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for results in rows:
        by = {r.strategy: r for r in results}
        side = {k: by[k].input_cost for k in STRATEGIES}
        cells = " | ".join(f"{side[k]:.4f}" for k in STRATEGIES)
        got, learnable = share(results), share(results, "learnable")
        vs = [_pct((side["planner"] - side[k]) / side[k]) if side[k] else "—" for k in ("none", "automatic")]
        per = by["planner"].count_calls / max(1, by["planner"].requests)
        lines.append(
            f"| {results[0].workload} | {by['planner'].requests} | {cells} | "
            f"{'—' if got is None else f'{got:.1%}'} | {'—' if learnable is None else f'{learnable:.1%}'} | "
            f"{vs[0]} | {vs[1]} | {per:.2f} |"
        )
    return "\n".join(lines)


def markdown(rows: list[list[Result]]) -> str:
    """The savings table (:func:`savings_table`), then the emulator's billed totals."""
    head = "| workload | calls | " + " | ".join(STRATEGIES) + " |"
    rule = "|---|---:|" + "---:|" * len(STRATEGIES)
    billed = ["Billed total (emulator bill, USD):", "", head, rule]
    for results in rows:
        by = {r.strategy: r for r in results}
        totals = " | ".join(f"{by[k].total:.4f}" for k in STRATEGIES)
        billed.append(f"| {results[0].workload} | {by['planner'].requests} | {totals} |")
    return "\n".join(["Input side (bill minus output, USD):", "", savings_table(rows), "", *billed])
