"""Planner cost: time to plan one request with a warm memo, against one ``json.dumps`` of the body.

For 10, 100 and 1,000 content blocks (an agent conversation: text, tool_use, tool_result),
prints the median planning time and its ratio to ``json.dumps`` of the same body measured
in the same run (both as CPU time of this thread, ``time.thread_time``, so other processes on a
shared machine inflate neither). The plan column re-plans the same body, as an agent's next
request repeats every earlier block: the planner's block and message memos (``cachewise.prompt``)
hold them. The last column empties every memo of ``cachewise.prompt`` (blocks, messages with
their chained hashes, salts, long texts) before each plan: every block read as if never seen.
With ``--interleaved``, the warm-memo ratio again with ``json.dumps`` and the plan timed in turn,
round by round (less at the mercy of other processes than two phases one after the other). Then
count_tokens calls per request on each workload of ``cachewise.workloads.SUITE`` (in-process
emulator). Run::

    .venv/bin/python benchmarks/planner_bench.py [--interleaved]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from cachewise import prompt as prompt_module
from cachewise.planner import CachePlanner
from cachewise.pricing import PriceBook
from cachewise.tokens import TokenCounter, TokenMemo
from cachewise.workloads import SUITE, agent_conversation, run


def fake_count(body: dict[str, Any]) -> int:
    return len(json.dumps(body)) // 4


def timed(fn: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.thread_time()
        for _ in range(5):
            fn()
        samples.append((time.thread_time() - start) / 5)
    return statistics.median(samples)


def planning_table() -> str:
    book = PriceBook.default()
    lines = [
        "| blocks | positions | json.dumps | plan (warm memo) | ratio | blocks unseen | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for blocks in (10, 100, 1000):
        body = agent_conversation(blocks)
        planner = CachePlanner(TokenCounter(fake_count, memo=TokenMemo(None)), book=book)
        first = planner.plan(body)  # fills the memo and the reuse window
        repeat = 200 if blocks < 1000 else 30
        dumps = timed(lambda body=body: json.dumps(body), repeat)  # type: ignore[misc]
        plan = timed(lambda body=body, planner=planner: planner.plan(body, record=False), repeat)  # type: ignore[misc]

        def unseen(body: dict[str, Any] = body, planner: CachePlanner = planner) -> None:
            prompt_module._forget()
            planner.plan(body, record=False)

        cold = timed(unseen, repeat)
        lines.append(
            f"| {blocks:,} | {first.positions:,} | {dumps * 1e3:.3f} ms | {plan * 1e3:.3f} ms "
            f"| {plan / dumps:.1f}× | {cold * 1e3:.3f} ms | {cold / dumps:.1f}× |"
        )
    return "\n".join(lines)


def interleaved_table(rounds: int = 600) -> str:
    """The warm-memo ratio with the two measured in turn: each round times 5 ``json.dumps`` then 5
    plans, so both see the same moment of a shared machine; the ratio of the fastest round of each
    (what other processes inflate least) and the median of the rounds' own ratios."""
    book = PriceBook.default()
    lines = ["| blocks | rounds | fastest ratio | median ratio |", "|---:|---:|---:|---:|"]
    for blocks in (10, 100, 1000):
        body = agent_conversation(blocks)
        planner = CachePlanner(TokenCounter(fake_count, memo=TokenMemo(None)), book=book)
        planner.plan(body)
        dumps: list[float] = []
        plans: list[float] = []
        n = rounds if blocks < 1000 else rounds // 10
        for _ in range(n):
            start = time.thread_time()
            for _ in range(5):
                json.dumps(body)
            mid = time.thread_time()
            for _ in range(5):
                planner.plan(body, record=False)
            plans.append(time.thread_time() - mid)
            dumps.append(mid - start)
        ratios = [p / d for p, d in zip(plans, dumps, strict=True) if d > 0]
        lines.append(
            f"| {blocks:,} | {n} | {min(plans) / min(dumps):.2f}× | {statistics.median(ratios):.2f}× |"
        )
    return "\n".join(lines)


def count_calls_table(scale: int) -> str:
    lines = ["| workload | requests | count_tokens calls | per request |", "|---|---:|---:|---:|"]
    for make in SUITE:
        result = run(make(scale), "planner")
        lines.append(
            f"| {result.workload} | {result.requests} | {result.count_calls} | "
            f"{result.count_calls / max(1, result.requests):.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    print("Planning time per request (median), warm memo, against one json.dumps of the same body:\n")
    print(planning_table())
    if "--interleaved" in sys.argv[1:]:
        print("\nThe same warm-memo ratio, json.dumps and plan measured in turn (5 of each per round):\n")
        print(interleaved_table())
    print("\ncount_tokens calls per request (planner strategy, in-process emulator, scale 3):\n")
    print(count_calls_table(3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
