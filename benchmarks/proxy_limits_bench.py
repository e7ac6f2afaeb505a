"""What the proxy holds while it refuses an oversized body, and how fast it answers.

    python benchmarks/proxy_limits_bench.py [--mib 40] [--limit-bytes N]

JSON per case (a body with ``content-length``, a chunked body): the status answered, the time
to answer, and the peak memory allocated meanwhile in this process (tracemalloc), where the
proxy runs (on loopback, upstream a mock that is never reached). The client's own body is
allocated before measuring (with ``content-length``) or streamed in 64 KiB chunks (chunked).
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator

import httpx2
import uvicorn

from cachewise.integrations.proxy import API_BODY_LIMIT, create_proxy_app
from cachewise.integrations.tracker import CallTracker


def _never(request: httpx2.Request) -> httpx2.Response:
    raise AssertionError("an oversized body reached the upstream")


def _serve(limit: int) -> tuple[str, uvicorn.Server, threading.Thread]:
    app = create_proxy_app(
        CallTracker(ledger=None),
        upstream="http://api.invalid",
        transport=httpx2.MockTransport(_never),
        max_body_bytes=limit,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def _chunks(size: int) -> Iterator[bytes]:
    for _ in range(size // 65_536):
        yield b"x" * 65_536


def measure(mib: int, limit: int) -> list[dict[str, object]]:
    base, server, thread = _serve(limit)
    size = mib * 2**20
    out: list[dict[str, object]] = []
    try:
        for case in ("content-length", "chunked"):
            content: bytes | Iterator[bytes] = b"x" * size if case == "content-length" else _chunks(size)
            tracemalloc.start()
            start_mem = tracemalloc.get_traced_memory()[0]
            started = time.perf_counter()
            reply = httpx2.post(f"{base}/v1/messages", content=content, timeout=120)
            elapsed = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1] - start_mem
            tracemalloc.stop()
            out.append(
                {
                    "case": case,
                    "body_mib": mib,
                    "limit_bytes": limit,
                    "status": reply.status_code,
                    "ms": round(elapsed * 1000, 1),
                    "peak_mib": round(peak / 2**20, 1),
                }
            )
            del content
    finally:
        server.should_exit = True
        thread.join(10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=40, help="body size in MiB")
    parser.add_argument("--limit-bytes", type=int, default=API_BODY_LIMIT, help="the proxy's body limit")
    args = parser.parse_args()
    print(json.dumps(measure(args.mib, args.limit_bytes), indent=2))


if __name__ == "__main__":
    main()
