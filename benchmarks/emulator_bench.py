"""Emulator throughput and latency for a 10k-token cached request, over a real loopback socket.

Run: ``.venv/bin/python benchmarks/emulator_bench.py [--n 200]``

Measures, with the official SDK over HTTP (uvicorn on 127.0.0.1, bounded loops):

* baseline A: ``count_tokens`` on a tiny request;
* baseline B: a tiny uncached ``messages.create``;
* a 10k-token cached request (JSON), and the same streamed;
* in process, without HTTP: the emulator's own handling time for the 10k-token request.

Prints requests per second, p50 and p99 latency, and ratios against the baselines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import anthropic

from cachewise.emulator import Emulator, EmulatorServer, HttpRequest

MODEL = "claude-sonnet-5"
BIG = [{"type": "text", "text": " ".join(["tok"] * 9990), "cache_control": {"type": "ephemeral"}}]
HI: Any = [{"role": "user", "content": "hi"}]


def measure(label: str, n: int, call: Callable[[], object]) -> dict[str, float]:
    call()  # warm
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    times.sort()
    row = {
        "rps": n / total,
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
    }
    print(
        f"{label:<38} {row['rps']:>9.1f} req/s   p50 {row['p50_ms']:>7.2f} ms   p99 {row['p99_ms']:>7.2f} ms"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="requests per measurement (bounded)")
    n = max(10, min(parser.parse_args().n, 5000))
    with EmulatorServer() as server:
        client = anthropic.Anthropic(api_key="bench", base_url=server.base_url, max_retries=0)
        tokens = client.messages.count_tokens(model=MODEL, system=BIG, messages=HI).input_tokens  # type: ignore[arg-type]
        print(f"emulator at {server.base_url}; request of {tokens} tokens; {n} requests each\n")
        count = measure(
            "baseline: count_tokens (tiny)", n, lambda: client.messages.count_tokens(model=MODEL, messages=HI)
        )
        tiny = measure(
            "baseline: create (tiny, uncached)",
            n,
            lambda: client.messages.create(model=MODEL, max_tokens=16, messages=HI),
        )
        cached = measure(
            "create, 10k tokens cached (JSON)",
            n,
            lambda: client.messages.create(model=MODEL, max_tokens=16, system=BIG, messages=HI),  # type: ignore[arg-type]
        )

        def streamed() -> None:
            with client.messages.stream(model=MODEL, max_tokens=16, system=BIG, messages=HI) as stream:  # type: ignore[arg-type]
                stream.get_final_message()

        stream = measure("stream, 10k tokens cached (SSE)", n, streamed)
        last = server.emulator.bill()[-1]["usage"]
        assert last["cache_read_input_tokens"] == tokens - 11, last
        client.close()

    emulator = Emulator()
    import json

    body = json.dumps({"model": MODEL, "max_tokens": 16, "system": BIG, "messages": HI}).encode()
    request = HttpRequest("POST", "/v1/messages", headers={"x-api-key": "bench"}, body=body)
    inproc = measure("in process: handle() 10k tokens cached", n, lambda: emulator.handle(request))

    print("\nratios (lower is better)")
    print(f"  10k cached JSON   / tiny create   : {cached['p50_ms'] / tiny['p50_ms']:.2f}x p50")
    print(f"  10k cached JSON   / count_tokens  : {cached['p50_ms'] / count['p50_ms']:.2f}x p50")
    print(f"  10k cached stream / 10k JSON      : {stream['p50_ms'] / cached['p50_ms']:.2f}x p50")
    print(f"  in-process handle / HTTP 10k JSON : {inproc['p50_ms'] / cached['p50_ms']:.2f}x p50")
    print(f"\ntarget: 10k-token request handled well under 10 ms in process -> p50 {inproc['p50_ms']:.2f} ms")


if __name__ == "__main__":
    main()
