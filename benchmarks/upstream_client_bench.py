"""The proxy's upstream clients: CPU per request of each, against a trivial upstream in another process.

A ~50 kB POST (the size of a 10k-token prompt) and a short JSON reply, 8 at a time on one pooled
client, over loopback. The upstream is a bare asyncio protocol (in its own process, on uvloop) so
that the client's own work is what this process spends. For each client the proxy can send with
(``HttpxUpstream``, ``AiohttpUpstream`` of :mod:`cachewise.integrations.upstream`) and each event
loop (asyncio, uvloop when installed), prints this process's CPU time per request
(``time.process_time``) and the ratio to httpx2 on the same loop, measured in the same run. Run::

    .venv/bin/python benchmarks/upstream_client_bench.py [--requests 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx2

from cachewise.integrations.upstream import AiohttpUpstream, HttpxUpstream, Upstream

BODY = b'{"system": "' + b"word " * 10_000 + b'"}'
REPLY = b'{"id":"msg_1","type":"message","usage":{"input_tokens":5,"output_tokens":3}}'

_SERVER = r"""
import asyncio, sys
REPLY = REPLY_LITERAL
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
HEAD += b"request-id: req_1\r\ncontent-length: %d\r\n\r\n"
class Upstream(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            size = int(head[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + size:
                return
            self.buffer = self.buffer[end + 4 + size:]
            self.transport.write(HEAD % len(REPLY) + REPLY)
async def main():
    server = await asyncio.get_running_loop().create_server(Upstream, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
""".replace("REPLY_LITERAL", repr(REPLY))

HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01", "content-type": "application/json"}


async def _measure(client: Upstream, requests: int, concurrency: int = 8) -> float:
    async def one() -> None:
        reply = await client.send("POST", "/v1/messages", HEADERS, BODY)
        await reply.aread()
        await reply.aclose()

    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    try:
        for _ in range(50):  # connections open, caches warm
            await one()
        started = time.process_time()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        return (time.process_time() - started) / (requests // concurrency * concurrency)
    finally:
        await client.aclose()


def _run(make: Callable[[], Upstream], requests: int, loop: str) -> float:
    main: Callable[[], Coroutine[Any, Any, float]] = lambda: _measure(make(), requests)  # noqa: E731
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}"
        timeout = httpx2.Timeout(600, connect=10)
        clients: dict[str, Callable[[], Upstream]] = {"httpx2": lambda: HttpxUpstream(base, timeout=timeout)}
        if importlib.util.find_spec("aiohttp") is not None:
            clients["aiohttp"] = lambda: AiohttpUpstream(base, timeout=timeout)
        loops = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") is not None else [])
        print("| loop | client | CPU per request | vs httpx2 |")
        print("|---|---|---:|---:|")
        for loop in loops:
            baseline = None
            for name, make in clients.items():
                cpu = _run(make, args.requests, loop)
                baseline = baseline or cpu
                print(f"| {loop} | {name} | {cpu * 1e3:.3f} ms | {cpu / baseline:.2f}× |", flush=True)
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
