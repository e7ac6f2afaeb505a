"""``cachewise proxy --reuse-store``: two proxy processes, one Redis store, one stream of traffic.

The second proxy plans the second request knowing what the first one counted and saw: it makes
no ``count_tokens`` call of its own for a prompt the first one counted, as a single proxy would not.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from cachewise.emulator import EmulatorServer
from cachewise.fleet import open_store

# Bytes put it between the bounds of the minimum (1,024 tokens): the planner must count it.
SYSTEM = " ".join(f"rule{i % 97} applies to item {i}" for i in range(200))
HEADERS = {"x-api-key": "sk-ant-fleet-test", "anthropic-version": "2023-06-01"}


def _start(upstream: str, db: Path, store: str | None) -> tuple[subprocess.Popen[str], str]:
    """A proxy process with its own ledger and its own token memo file (as on another host)."""
    args = ["proxy", "--port", "0", "--upstream", upstream, "--db", str(db)]
    if store is not None:
        args += ["--reuse-store", store]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachewise", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "CACHEWISE_TOKEN_MEMO": str(db.with_suffix(".memo"))},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"proxy on (http://\S+)", line)
    if found is None:
        proc.kill()
        raise AssertionError(f"the proxy did not start: {line}{proc.communicate()[0]}")
    base = found.group(1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"{base}/_not_a_route", timeout=1)
            return proc, base
        except httpx2.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("the proxy never listened")


def _ask(base: str, question: str) -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": question}],
    }
    with httpx2.Client(base_url=base, timeout=60) as client:
        reply = client.post("/v1/messages", content=json.dumps(body), headers=HEADERS)
        assert reply.status_code == 200, reply.text


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=60)[0]


def _count_calls(server: EmulatorServer, run: list[tuple[int, str]], tmp: Path, store: str | None) -> int:
    """count_tokens calls the emulator answered while the proxies served ``run`` ((proxy, question))."""
    counted = 0
    original = server.emulator._count_tokens

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal counted
        counted += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    server.emulator._count_tokens = counting  # type: ignore[method-assign]
    procs = [_start(server.base_url, tmp / f"{i}-{store is not None}.db", store) for i in range(2)]
    try:
        for index, question in run:
            _ask(procs[index][1], question)
            time.sleep(0.5)  # the fleet's staleness is milliseconds; leave it room on a loaded machine
    finally:
        outputs = [_stop(p) for p, _ in procs]
        server.emulator._count_tokens = original  # type: ignore[method-assign]
    assert all(p.returncode == 0 for p, _ in procs), outputs
    return counted


def test_two_proxies_sharing_a_redis_store_count_a_prefix_once(
    claude_emulator: EmulatorServer, redis_store_url: str, tmp_path: Path
) -> None:
    run = [(0, "the same question"), (1, "the same question")]  # a retry lands on the other proxy
    alone = _count_calls(claude_emulator, run, tmp_path, None)
    shared = _count_calls(claude_emulator, run, tmp_path, redis_store_url)
    assert alone >= 2  # each proxy counts the prompt itself
    assert shared < alone
    store = open_store(redis_store_url)
    try:
        assert sum(1 for _ in store.counts()) >= 1
    finally:
        store.close()
