"""Two real processes fanning out on one new prefix at the same moment write it once (Redis, PostgreSQL).

Each process wraps an SDK client of its own (``cachewise.wrap(..., reuse_store=URL)``) and sends
its jobs from threads, all released together, against one emulator over HTTP whose responses begin
a little after their requests are read (a ``delay`` fault): without the fan-out leases each process
holds only its own requests and the prefix is written once per process.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

import anthropic
import pytest

import cachewise
from cachewise.emulator import Emulator, EmulatorServer
from cachewise.fleet import PostgresLeases, RedisLeases
from cachewise.ledger import Ledger

pytestmark = pytest.mark.slow

MODEL = "claude-sonnet-4-6"
SHARED = "You review contracts clause by clause and cite each clause you rely on. " * 500
JOBS = 3  # per process


def _body(job: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 16,
        "system": [{"type": "text", "text": SHARED, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": f"Question {job}: which clause limits liability?"}],
    }


def _worker(conn: Connection, base_url: str, store: str, leases: bool, first: int) -> None:
    now: list[datetime] = []
    raw = anthropic.Anthropic(api_key="fleet", base_url=base_url, max_retries=0)
    client = cachewise.wrap(
        raw,
        ledger=Ledger("sqlite://"),
        clock=lambda: now[-1],
        planner=False,
        reuse_store=store,
        warm_start=False,
    )
    fanout = next(m for m in client._middleware if hasattr(m, "fanout")).fanout  # type: ignore[attr-defined]
    assert isinstance(fanout.leases, RedisLeases | PostgresLeases)  # wrap() took the store's leases
    if not leases:
        fanout.leases = None
    now[:] = [conn.recv()]
    conn.send(None)
    conn.recv()  # go
    with ThreadPoolExecutor(JOBS) as pool:
        list(pool.map(lambda job: client.messages.create(**_body(job)), range(first, first + JOBS)))
    conn.send(fanout.counts["fleet_held"])  # prefixes this process waited on another for
    raw.close()


def _writes(store: str, leases: bool) -> tuple[int, int, int]:
    """How many calls wrote the shared prefix, how many calls there were, and how many times a
    process waited on the other's lead through the store."""
    emulator = Emulator()
    context = multiprocessing.get_context("spawn")
    with EmulatorServer(emulator) as server:
        pipes, workers = [], []
        for i in range(2):
            parent, child = context.Pipe()
            worker = context.Process(
                target=_worker, args=(child, server.base_url, store, leases, i * JOBS), daemon=True
            )
            worker.start()
            pipes.append(parent)
            workers.append(worker)
        emulator.faults.add("delay", count=100, seconds=1.2)
        for pipe in pipes:
            pipe.send(emulator.now())
        for pipe in pipes:
            pipe.recv()
        for pipe in pipes:
            pipe.send("go")
        watched = 0
        for pipe in pipes:
            assert pipe.poll(60), "a worker did not finish"
            watched += int(pipe.recv())
        for worker in workers:
            worker.join(30)
    rows = emulator.billing.rows()
    return sum(1 for r in rows if r.usage["cache_creation_input_tokens"] > 0), len(rows), watched


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_a_new_prefix_fanned_out_by_two_processes_is_written_once(
    backend: str, request: pytest.FixtureRequest
) -> None:
    store = request.getfixturevalue("redis_store_url" if backend == "redis" else "pg_store_url")
    started = time.monotonic()
    writes, calls, watched = _writes(store, leases=True)
    assert calls == 2 * JOBS
    assert writes == 1, f"{writes} writes in {time.monotonic() - started:.1f} s"
    assert watched == 1  # the other process waited on the lead through the store, once


def test_without_the_leases_each_process_writes_the_prefix(redis_store_url: str) -> None:
    writes, calls, watched = _writes(redis_store_url, leases=False)
    assert calls == 2 * JOBS and watched == 0
    assert writes == 2  # each process held its own followers, but not the other's
