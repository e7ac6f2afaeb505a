"""The proxy's own work per stream passed through, without sockets: thread CPU time per stream.

One process: the load benchmark's request is answered by the in-process emulator as a stream, and
its SSE reply is cut where the emulator's writes end (one event a chunk, as the proxy reads them off
the socket: about 14 a stream). Each round hands those chunks, by an async iterator that suspends
before each one as a socket read does, to what the proxy does with a stream: ``tracker.tap`` (a
:class:`~cachewise.integrations.tracker.StreamRecorder` on a tracker with no ledger and no planner),
``tap_async`` and a :class:`~cachewise.integrations.proxy.PassThrough` sending to a stand-in for the
server's ``send`` (a ``receive`` that never reports a disconnect), on uvloop when installed.
``json.loads`` of the request body, timed in the same run, is the yardstick. Run::

    .venv/bin/python benchmarks/stream_pass_bench.py [--streams 3000] [--rounds 5]

Prints, per round, µs of thread CPU per stream: the whole pass-through (watcher, tap, feed, sends,
record) and the feeding alone (``recorder.feed`` over the chunks, no event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).parent))

from proxy_load_bench import _body, _system_prompt

from cachewise.emulator import Emulator
from cachewise.emulator.transport import AsyncEmulatorTransport
from cachewise.integrations.proxy import PassThrough
from cachewise.integrations.streams import tap_async
from cachewise.integrations.tracker import CallTracker

HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01", "content-type": "application/json"}


async def _reply(raw: bytes) -> tuple[list[bytes], dict[str, str]]:
    """The emulator's SSE answer to ``raw``, cut after each event, and its headers."""
    transport = AsyncEmulatorTransport(Emulator())
    async with httpx2.AsyncClient(base_url="http://emulator", transport=transport) as http:
        reply = await http.post("/v1/messages", content=raw, headers=HEADERS)
    events = reply.content.split(b"\n\n")
    chunks = [event + b"\n\n" for event in events[:-1]]
    return chunks, dict(reply.headers)


async def _chunks(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)  # a socket read that waits: the task is suspended, the loop turns
        yield chunk


async def _release() -> None:
    return None


async def _round(
    tracker: CallTracker, body: Any, chunks: list[bytes], headers: dict[str, str], n: int
) -> float:
    never = asyncio.Event()

    async def receive() -> MutableMapping[str, Any]:
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    scope: dict[str, Any] = {"type": "http"}
    took = 0.0
    for _ in range(n):
        prepared = tracker.prepare(body)
        t0 = time.thread_time()
        recorder = tracker.tap(prepared, 200, headers)
        response = PassThrough(tap_async(recorder, _chunks(chunks), _release), 200, headers)
        await response(scope, receive, send)
        took += time.thread_time() - t0
    return took / n


def _feeding(tracker: CallTracker, body: Any, chunks: list[bytes], headers: dict[str, str], n: int) -> float:
    took = 0.0
    for _ in range(n):
        recorder = tracker.tap(tracker.prepare(body), 200, headers)
        t0 = time.thread_time()
        for chunk in chunks:
            recorder.feed(chunk)
        took += time.thread_time() - t0
        recorder.close()
    return took / n


def _runner() -> Any:
    """``asyncio.run`` on uvloop's loop when it is installed, as the proxy's server runs."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    raw = json.dumps(_body(_system_prompt(10_000), 1, stream=True)).encode()
    chunks, headers = asyncio.run(_reply(raw))
    body = json.loads(raw)
    tracker = CallTracker(ledger=None)
    run = _runner()
    run(_round(tracker, body, chunks, headers, 200))  # warm
    whole, fed, loads = [], [], []
    for _ in range(args.rounds):
        whole.append(run(_round(tracker, body, chunks, headers, args.streams)))
        fed.append(_feeding(tracker, body, chunks, headers, args.streams))
        t0 = time.thread_time()
        for _ in range(200):
            json.loads(raw)
        loads.append((time.thread_time() - t0) / 200)
    us = [f"{x * 1e6:.1f}" for x in whole]
    print(f"chunks a stream: {len(chunks)}")
    print(
        f"pass-through, µs a stream, by round: {' '.join(us)} (median {statistics.median(whole) * 1e6:.1f})"
    )
    fu = [f"{x * 1e6:.1f}" for x in fed]
    print(f"feeding alone, µs a stream, by round: {' '.join(fu)} (median {statistics.median(fed) * 1e6:.1f})")
    print(f"json.loads of the body (yardstick), µs: median {statistics.median(loads) * 1e6:.1f}")


if __name__ == "__main__":
    main()
