"""What cachewise adds to a call: wrapped against unwrapped, same emulator, same run.

    python benchmarks/wrap_bench.py [--calls 200]

JSON: median and p99 latency per call, plain client vs wrapped (recording only, and
recording + planning with a warm token memo); the difference is what cachewise adds.
Streaming: time to first token, wrapped / plain. Loopback only; bounded loops.
The miss watch's look before a planned call: reading the sent body again, against reusing the
planner's reading of it (what the wrapper does), same body, same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic

import cachewise
from cachewise.diagnose import MissWatch
from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger
from cachewise.planner import CachePlanner

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 32,
    "system": "Reference text that stays the same. " * 400,
    "messages": [{"role": "user", "content": "Summarise the reference."}],
}


def interleaved(calls: int, variants: dict[str, Callable[[], None]]) -> dict[str, list[float]]:
    """Time each variant once per round, in turn, so load on the machine hits all alike."""
    for fn in variants.values():
        fn()  # warm up (connection, cache entry, token memo)
    out: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(calls):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - t0) * 1000)
    return out


def first_token(client: Any) -> Callable[[], None]:
    def run() -> None:
        with client.messages.stream(**BODY) as stream:
            for event in stream:
                if event.type == "content_block_delta":
                    break

    return run


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 2 else values[0]


def watch_looks(calls: int, planner: CachePlanner) -> dict[str, list[float]]:
    """The miss watch's ``before`` on a planned body: read again, or the planner's reading reused."""
    plan = planner.plan(BODY)
    sent = plan.request if plan.added else BODY
    added = [(b.position, b.ttl) for b in plan.added]
    at = plan.planned_at
    reread, reused = MissWatch(diagnostics=False), MissWatch(diagnostics=False)
    return interleaved(
        calls,
        {
            "read again": lambda: reread.before(sent, at),
            "planner's reading": lambda: reused.before(sent, at, plan.prompt, added),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with EmulatorServer() as server, tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "bench.sqlite")
        plain = anthropic.Anthropic(api_key="sk-bench", base_url=server.base_url, max_retries=0)
        recording = cachewise.wrap(plain, ledger=ledger, planner=False)
        undiagnosed = cachewise.wrap(plain, ledger=ledger, planner=False, diagnostics=False)
        planning = cachewise.wrap(plain, ledger=ledger, planner=True, clock=server.emulator.now)
        results = interleaved(
            args.calls,
            {
                "plain": lambda: plain.messages.create(**BODY),
                "wrapped (record)": lambda: recording.messages.create(**BODY),
                "record, no API diag.": lambda: undiagnosed.messages.create(**BODY),
                "wrapped (plan+record)": lambda: planning.messages.create(**BODY),
            },
        )
        base = statistics.median(results["plain"])
        print(f"JSON calls: {args.calls} each, {server.base_url}")
        for name, values in results.items():
            med = statistics.median(values)
            print(
                f"  {name:<24} p50 {med:7.2f} ms  p99 {p(values, 99):7.2f} ms  "
                f"added {med - base:+6.2f} ms ({med / base:.2f}x)"
            )
        streams = max(20, args.calls // 5)
        ttfts = interleaved(streams, {"plain": first_token(plain), "wrapped": first_token(recording)})
        plain_ttft, wrapped_ttft = ttfts["plain"], ttfts["wrapped"]
        ratio = statistics.median(wrapped_ttft) / statistics.median(plain_ttft)
        print(
            f"streaming TTFT over {streams} streams: plain p50 {statistics.median(plain_ttft):.2f} ms, "
            f"wrapped p50 {statistics.median(wrapped_ttft):.2f} ms, ratio {ratio:.2f}x"
        )
        looks = watch_looks(args.calls * 5, CachePlanner(clock=server.emulator.now))
        again, reused = (statistics.median(v) for v in looks.values())
        print(
            f"miss watch before() on a planned call: read again p50 {again:.3f} ms, "
            f"planner's reading p50 {reused:.3f} ms, ratio {reused / again:.2f}x"
        )
        ledger.flush()
        print(f"rows recorded: {len(ledger.calls())}")
        ledger.close()
        plain.close()


if __name__ == "__main__":
    main()
