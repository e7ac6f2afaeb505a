"""The proxy under load: throughput, added latency and CPU per request, against the direct path.

    python benchmarks/proxy_load_bench.py [--levels 1,32,256] [--requests 400] [--workers 1]
        [--baseline CHECKOUT]

Three processes: the emulator (``cachewise emulate``, the upstream), the proxy (``cachewise proxy``
with planning on, recording to a SQLite ledger in a temporary directory) and this client. Each
request carries a ~10k-token system prompt marked for caching and a short user turn. At each
concurrency level two rounds run, one of JSON replies and one of SSE streams; in each the same
requests go first straight to the emulator (the direct path), then through the proxy. CPU time of
each server process is read from ``/proc/<pid>/stat`` (user + system, children included for
``--workers`` > 1) before and after each phase, so the proxy's CPU per request is compared with the
emulator's in the same run.

JSON lines on stdout: one per level and mode (``json``, ``sse``), with requests per second both
ways, p50/p99 latency both ways and their difference (what the proxy adds), and CPU ms per request
of the proxy and of the upstream, with their ratio. All servers run on this machine, so the client
competes with them for CPU.

``--baseline CHECKOUT``: also start the proxy of another checkout of cachewise (its own ``.venv``,
e.g. the main branch's), on the same emulator, and send the same requests through it right after
this one's at each level (the order alternates between levels); each line then also carries that
proxy's latency and CPU per request and ``proxy_cpu_vs_baseline``, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its reaped children (uvicorn workers are children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    total = utime + stime + cutime + cstime
    for child in _children(pid):
        total += sum(int(x) for x in Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
    return total / _TICK


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(x) for x in path.read_text().split()]
    except OSError:
        return []


def _start(args: list[str], pattern: str, checkout: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """``python -m cachewise ARGS`` (of ``checkout``'s own venv, if given) and its base URL."""
    python = str(checkout / ".venv" / "bin" / "python") if checkout is not None else sys.executable
    proc = subprocess.Popen(
        [python, "-m", "cachewise", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=checkout,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 90  # a busy shared host starts a server slowly
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(pattern, line)
        if found:
            base = found.group(1)
            while time.monotonic() < deadline:  # bound, not yet listening: wait for uvicorn
                try:
                    httpx2.get(f"{base}/healthz-probe", timeout=1)
                    return proc, base
                except httpx2.TransportError:
                    time.sleep(0.05)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"{args[0]} did not start")


def _system_prompt(tokens: int) -> str:
    # The emulator counts an ASCII word of up to four letters as one token.
    words = [f"w{chr(97 + i % 26)}{chr(97 + (i // 26) % 26)}" for i in range(tokens)]
    return " ".join(words)


def _body(system: str, i: int, stream: bool) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32,
        "stream": stream,
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": f"question number {i}: what is in the prompt?"}],
    }


async def _one(client: httpx2.AsyncClient, body: bytes, stream: bool) -> tuple[float, int]:
    """The latency of one call and its status (a failed call is counted, not raised)."""
    started = time.perf_counter()
    headers = {"x-api-key": "bench", "anthropic-version": "2023-06-01", "content-type": "application/json"}
    if stream:
        async with client.stream("POST", "/v1/messages", content=body, headers=headers) as reply:
            async for _ in reply.aiter_raw():
                pass
    else:
        reply = await client.post("/v1/messages", content=body, headers=headers)
    return time.perf_counter() - started, reply.status_code


async def _phase(
    base: str, bodies: list[tuple[bytes, bool]], concurrency: int, failed: list[int] | None = None
) -> tuple[float, list[float]]:
    """Send ``bodies`` over ``concurrency`` connections; the time taken and each call's latency.

    The status of each call that did not succeed goes to ``failed``.
    """
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    queue: asyncio.Queue[tuple[bytes, bool]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    latencies: list[float] = []

    async def worker(client: httpx2.AsyncClient) -> None:
        while True:
            try:
                body, stream = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            latency, status = await _one(client, body, stream)
            latencies.append(latency)
            if status >= 400 and failed is not None:
                failed.append(status)

    async with httpx2.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _through(
    via: str, proxy: int, emulator: int, bodies: list[tuple[bytes, bool]], level: int
) -> tuple[float, list[float], list[int], float, float]:
    """The requests through one proxy: time, latencies, failures, its and the upstream's CPU (ms/request)."""
    failed: list[int] = []
    up1, px1 = _cpu_seconds(emulator), _cpu_seconds(proxy)
    took, latencies = asyncio.run(_phase(via, bodies, level, failed))
    up2, px2 = _cpu_seconds(emulator), _cpu_seconds(proxy)
    n = len(bodies)
    return took, latencies, failed, (px2 - px1) / n * 1000, (up2 - up1) / n * 1000


def _level(
    system: str,
    level: int,
    mode: str,
    requests: int,
    emulator: int,
    proxy: int,
    upstream: str,
    via: str,
    baseline: tuple[int, str] | None = None,
    baseline_first: bool = False,
) -> dict[str, Any]:
    """One concurrency level, all JSON or all SSE: the direct path, then through the proxy
    (and through the ``baseline`` proxy, before or after it)."""
    stream = mode == "sse"
    bodies = [(json.dumps(_body(system, i, stream=stream)).encode(), stream) for i in range(requests)]
    # warm: the cache entry, the planner's token memo, the connections
    for base in (via, *([baseline[1]] if baseline is not None else []), upstream):
        asyncio.run(_phase(base, bodies[: min(level, 16) * 2], min(level, 16)))
    direct_failed: list[int] = []
    up0 = _cpu_seconds(emulator)
    direct_s, direct = asyncio.run(_phase(upstream, bodies, level, direct_failed))
    up1 = _cpu_seconds(emulator)
    other: tuple[float, list[float], list[int], float, float] | None = None
    if baseline is not None and baseline_first:
        other = _through(baseline[1], baseline[0], emulator, bodies, level)
    proxied_s, proxied, proxy_failed, proxy_ms, upstream_ms = _through(via, proxy, emulator, bodies, level)
    if baseline is not None and not baseline_first:
        other = _through(baseline[1], baseline[0], emulator, bodies, level)
    extra: dict[str, Any] = {}
    if other is not None:
        other_s, other_lat, other_failed, other_ms, _ = other
        extra = {
            "baseline_rps": round(requests / other_s, 1),
            "baseline_p50_ms": round(_pct(other_lat, 0.5), 2),
            "baseline_p99_ms": round(_pct(other_lat, 0.99), 2),
            "baseline_proxy_cpu_ms_per_request": round(other_ms, 3),
            "proxy_cpu_vs_baseline": round(proxy_ms / other_ms, 2) if other_ms else None,
            "baseline_first": baseline_first,
            "baseline_failed": sorted(other_failed),
        }
    return {
        "concurrency": level,
        "mode": mode,
        "requests": requests,
        "direct_rps": round(requests / direct_s, 1),
        "proxy_rps": round(requests / proxied_s, 1),
        "throughput_ratio": round(direct_s / proxied_s, 2),
        "direct_p50_ms": round(_pct(direct, 0.5), 2),
        "proxy_p50_ms": round(_pct(proxied, 0.5), 2),
        "added_p50_ms": round(_pct(proxied, 0.5) - _pct(direct, 0.5), 2),
        "direct_p99_ms": round(_pct(direct, 0.99), 2),
        "proxy_p99_ms": round(_pct(proxied, 0.99), 2),
        "added_p99_ms": round(_pct(proxied, 0.99) - _pct(direct, 0.99), 2),
        "proxy_cpu_ms_per_request": round(proxy_ms, 3),
        "upstream_cpu_ms_per_request": round(upstream_ms, 3),
        "upstream_cpu_ms_direct": round((up1 - up0) / requests * 1000, 3),
        "proxy_over_upstream_cpu": round(proxy_ms / upstream_ms, 2) if upstream_ms else None,
        "mean_latency_ms_direct": round(statistics.fmean(direct) * 1000, 2),
        "direct_failed": sorted(direct_failed),
        "proxy_failed": sorted(proxy_failed),
        **extra,
    }


def run(
    levels: list[int],
    requests: int,
    workers: int,
    tokens: int,
    plan: bool = True,
    baseline: Path | None = None,
) -> list[dict[str, Any]]:
    system = _system_prompt(tokens)
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        emulator, upstream = _start(
            ["emulate", "--port", "0", "--log-level", "warning"], r"emulator on (http://\S+)"
        )
        procs = [emulator]

        def proxy_args(db: str) -> list[str]:
            args = ["proxy", "--port", "0", "--upstream", upstream, "--db", f"{tmp}/{db}"]
            return [*args, "--workers", str(workers), "--plan" if plan else "--no-plan"]

        try:
            proxy, via = _start(proxy_args("bench.db"), r"proxy on (http://\S+)")
            procs.insert(0, proxy)
            other: tuple[int, str] | None = None
            if baseline is not None:
                old, old_via = _start(proxy_args("baseline.db"), r"proxy on (http://\S+)", baseline)
                procs.insert(0, old)
                other = (old.pid, old_via)
            for n, level in enumerate(levels):
                for mode in ("json", "sse"):
                    row = _level(
                        system,
                        level,
                        mode,
                        requests,
                        emulator.pid,
                        proxy.pid,
                        upstream,
                        via,
                        other,
                        n % 2 == 1,
                    )
                    out.append(row)
                    out[-1].update(workers=workers, plan=plan, system_tokens=tokens)
                    print(json.dumps(out[-1]), flush=True)
        finally:
            for proc in procs:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,32,256", help="Concurrent connections, comma-separated.")
    parser.add_argument("--requests", type=int, default=400, help="Requests per phase and level.")
    parser.add_argument("--workers", type=int, default=1, help="cachewise proxy --workers.")
    parser.add_argument("--tokens", type=int, default=10_000, help="System prompt size in tokens.")
    parser.add_argument("--no-plan", action="store_true", help="Run the proxy with --no-plan (record only).")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="Another cachewise checkout (with its .venv) whose proxy runs beside this one's, same run.",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    run(levels, args.requests, args.workers, args.tokens, not args.no_plan, args.baseline)


if __name__ == "__main__":
    main()
