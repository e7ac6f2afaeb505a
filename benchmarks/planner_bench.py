"""Planner cost: time to plan one request with a warm memo, against one ``json.dumps`` of the body.

For 10, 100 and 1,000 content blocks (an agent conversation: text, tool_use, tool_result),
prints the median planning time and its ratio to ``json.dumps`` of the same body measured
in the same run; then count_tokens calls per request on each workload of
``planner_workloads.py`` (in-process emulator). Run::

    .venv/bin/python benchmarks/planner_bench.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import planner_workloads as pw
from cachewise.planner import CachePlanner
from cachewise.pricing import PriceBook
from cachewise.tokens import TokenCounter, TokenMemo


def conversation(blocks: int) -> dict[str, Any]:
    words = ["cache", "prefix", "token", "model", "write", "read", "price", "plan", "tool", "user", "reply"]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "start " + " ".join(words * 20)}]
    n, k = 1, 0
    while n < blocks:
        tid = f"toolu_{k:05d}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"step {k} " + " ".join(words[: 3 + k % 8])},
                    {
                        "type": "tool_use",
                        "id": tid,
                        "name": "search",
                        "input": {"q": words[k % len(words)], "n": k},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tid, "content": " ".join(words * (2 + k % 5))},
                    {"type": "text", "text": f"note {k}"},
                ],
            }
        )
        n += 4
        k += 1
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "system": " ".join(words * 300),
        "messages": messages,
    }


def fake_count(body: dict[str, Any]) -> int:
    return len(json.dumps(body)) // 4


def timed(fn: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def planning_table() -> str:
    book = PriceBook.default()
    lines = ["| blocks | positions | json.dumps | plan (warm memo) | ratio |", "|---:|---:|---:|---:|---:|"]
    for blocks in (10, 100, 1000):
        body = conversation(blocks)
        planner = CachePlanner(TokenCounter(fake_count, memo=TokenMemo(None)), book=book)
        first = planner.plan(body)  # fills the memo and the reuse window
        repeat = 200 if blocks < 1000 else 30
        dumps = timed(lambda body=body: json.dumps(body), repeat)  # type: ignore[misc]
        plan = timed(lambda body=body, planner=planner: planner.plan(body, record=False), repeat)  # type: ignore[misc]
        lines.append(
            f"| {blocks:,} | {first.positions:,} | {dumps * 1e3:.3f} ms | {plan * 1e3:.3f} ms "
            f"| {plan / dumps:.1f}× |"
        )
    return "\n".join(lines)


def count_calls_table(scale: int) -> str:
    lines = ["| workload | requests | count_tokens calls | per request |", "|---|---:|---:|---:|"]
    for make in pw.WORKLOADS:
        result = pw.run(make(scale), "planner")
        lines.append(
            f"| {result.workload} | {result.requests} | {result.count_calls} | "
            f"{result.count_calls / max(1, result.requests):.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    print("Planning time per request (median), warm memo, against one json.dumps of the same body:\n")
    print(planning_table())
    print("\ncount_tokens calls per request (planner strategy, in-process emulator, scale 3):\n")
    print(count_calls_table(3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
