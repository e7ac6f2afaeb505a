"""CPU per request of the ASGI server alone: uvicorn (httptools, uvloop) against granian, same run.

    python benchmarks/asgi_server_bench.py [--requests 2000] [--concurrency 32]

Each server runs a bare ASGI app in its own process (it reads a 50 kB request body, then answers
a short JSON reply or a stream of eight SSE events), so what is measured is the server's own work
per request: parsing, the ASGI messages, the event loop and the socket writes. The servers are
measured in turns (the order reversed in the second round) and their CPU (``/proc/<pid>/stat``,
worker processes included) is divided by the requests. granian is not a dependency of cachewise:
without it installed only uvicorn is measured. One JSON line per round, mode and server.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

_TICK = os.sysconf("SC_CLK_TCK")

_APP = """
REPLY = b'{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],' \\
    b'"model":"claude-sonnet-4-5","stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":5}}'


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["path"] == "/sse":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for _ in range(8):
            event = {"type": "http.response.body", "body": b"event: x\\ndata: {}\\n\\n", "more_body": True}
            await send(event)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(REPLY)).encode())]})
    await send({"type": "http.response.body", "body": REPLY})
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live children (granian's worker is a child)."""
    pids = [pid]
    try:
        pids += [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _commands(port: int) -> dict[str, list[str]]:
    py = sys.executable
    uvicorn = [py, "-m", "uvicorn", "bare:app", "--port", str(port), "--loop", "uvloop"]
    out = {"uvicorn": [*uvicorn, "--http", "httptools", "--no-access-log", "--log-level", "warning"]}
    if importlib.util.find_spec("granian") is not None:
        out["granian"] = [py, "-m", "granian", "--interface", "asgi", "bare:app", "--port", str(port + 1)]
        out["granian"] += ["--workers", "1", "--runtime-threads", "1", "--runtime-mode", "st"]
        out["granian"] += ["--loop", "uvloop", "--no-ws", "--no-access-log", "--log-level", "warning"]
    return out


async def _load(base: str, requests: int, concurrency: int, path: str, body: bytes) -> None:
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    left = [requests]
    async with httpx2.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                async with client.stream("POST", path, content=body) as reply:
                    async for _ in reply.aiter_raw():
                        pass
                    if reply.status_code != 200:
                        raise RuntimeError(f"{base}{path}: HTTP {reply.status_code}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def _wait(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.post(base + "/json", content=b"x", timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{base} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    body = b"x" * 50_000
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare.py").write_text(_APP)
        port = _free_port()
        servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        for i, (name, command) in enumerate(_commands(port).items()):
            servers[name] = (subprocess.Popen(command, cwd=tmp), f"http://127.0.0.1:{port + i}")
        try:
            for _, base in servers.values():
                _wait(base)
                asyncio.run(_load(base, 200, 16, "/json", body))  # warm
            for round_ in range(2):
                order = list(servers.items()) if round_ == 0 else list(reversed(servers.items()))
                for path in ("/json", "/sse"):
                    for name, (proc, base) in order:
                        before = _cpu_seconds(proc.pid)
                        asyncio.run(_load(base, args.requests, args.concurrency, path, body))
                        spent = _cpu_seconds(proc.pid) - before
                        line = {"round": round_, "mode": path[1:], "server": name}
                        line["cpu_ms_per_request"] = round(spent / args.requests * 1000, 3)
                        line["load_average"] = round(os.getloadavg()[0], 2)
                        print(json.dumps(line), flush=True)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
