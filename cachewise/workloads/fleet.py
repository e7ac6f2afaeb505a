"""Replay one workload through several planner processes, as a load balancer would split it.

:func:`run_fleet` starts ``processes`` worker processes (real OS processes, ``spawn``), each with
its own :class:`~cachewise.planner.CachePlanner` and token memo, and hands them the workload's calls
round-robin, one at a time, against one emulator served over HTTP (its virtual clock is moved to
each call's time, and each worker's planner reads that time). With ``store`` the workers share
their reuse state through it (:mod:`cachewise.fleet`); without, each learns alone.

``sync=True`` makes each worker wait before it plans until it has read everything the fleet
published (:meth:`cachewise.fleet.Fleet.sync`): the fleet then knows exactly what one process
would. ``sync=False`` is the production path (publish and read in the background, no wait): its
bill shows what the staleness costs when requests follow each other this closely.

:class:`FleetReplay` keeps its worker processes for several replays (a fresh planner, memo, fleet
link and emulator each time), so a test over the whole suite starts its processes once.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

import anthropic

from ..emulator import Emulator, EmulatorServer
from .script import Workload, play

__all__ = ["FleetReplay", "FleetResult", "run_fleet"]


@dataclass(frozen=True, slots=True)
class FleetResult:
    """A fleet replay's bill, and the time the workers spent in the planner and the fleet per request."""

    workload: str
    processes: int
    shared: bool
    total: Decimal
    input_cost: Decimal
    requests: int
    count_calls: int
    plan_seconds: float  # planning + observing, summed over every request
    sync_seconds: float  # waiting for the fleet (sync=True only), summed


def _replay(conn: Connection, base_url: str, store: str | None, sync: bool) -> None:
    """One workload in a worker: a planner, token memo and fleet link of its own, made here and
    dropped at the end, so nothing learned in one replay reaches the next."""
    from ..fleet import attach
    from ..planner import CachePlanner
    from ..pricing import PriceBook
    from ..tokens import TokenCounter, TokenMemo

    now: list[datetime] = []
    client = anthropic.Anthropic(api_key="fleet", base_url=base_url, max_retries=0)
    counter = TokenCounter(client, memo=TokenMemo(None))
    book: PriceBook = conn.recv()
    planner = CachePlanner(counter, book=book, clock=lambda: now[-1])
    fleet = attach(planner, store=store) if store is not None else None
    conn.send(None)
    try:
        while True:
            job = conn.recv()
            if job is None:
                break
            body, at = job
            now[:] = [at]
            waited = 0.0
            if fleet is not None and sync:
                started = time.perf_counter()
                fleet.sync()
                waited = time.perf_counter() - started
            started = time.perf_counter()
            plan = planner.plan(body)
            spent = time.perf_counter() - started
            message = client.messages.create(**plan.request)
            started = time.perf_counter()
            planner.observe(plan, message.usage, at)
            spent += time.perf_counter() - started
            if fleet is not None and sync:
                started = time.perf_counter()
                fleet.sync()
                waited += time.perf_counter() - started
            conn.send((message.model_dump(mode="json"), spent, waited))
    finally:
        if fleet is not None:
            fleet.close()
        client.close()
    conn.send(counter.calls)


def _worker(conn: Connection) -> None:
    """A worker process: replays one workload per ``(base_url, store, sync)`` it is sent, until ``None``."""
    while True:
        start = conn.recv()
        if start is None:
            return
        _replay(conn, *start)


class FleetReplay:
    """``processes`` worker processes (``spawn``), started once, that replay workloads one at a time.

    Starting a Python process that imports the SDK takes seconds on a busy machine; a test or
    benchmark that replays many workloads starts its workers once. Each :meth:`run` gives every
    worker a new planner, token memo and fleet link (and a new emulator), so replays share nothing
    but the worker processes themselves. A context manager; :meth:`close` stops the workers.
    """

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"processes: at least 1, got {processes}")
        self.processes = processes
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._workers: list[Any] = []
        for _ in range(processes):
            parent, child = context.Pipe()
            worker = context.Process(target=_worker, args=(child,), daemon=True)
            worker.start()
            self._pipes.append(parent)
            self._workers.append(worker)

    def __enter__(self) -> FleetReplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(None)
            except OSError:
                pass
        for worker in self._workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
        self._pipes, self._workers = [], []

    def run(
        self, workload: Workload, *, store: str | None = None, sync: bool = True, limit: int | None = None
    ) -> FleetResult:
        """Replay ``workload`` split round-robin over the workers; the emulator's bill."""
        if not self._pipes:
            raise RuntimeError("this FleetReplay is closed")
        emulator = Emulator()
        pipes, processes = self._pipes, self.processes
        plan_seconds = sync_seconds = 0.0
        with EmulatorServer(emulator) as server:
            for pipe in pipes:
                pipe.send((server.base_url, store, sync))
                pipe.send(emulator.book)
            for pipe in pipes:
                pipe.recv()
            turn = 0

            def send(body: dict[str, Any]) -> Any:
                nonlocal turn, plan_seconds, sync_seconds
                pipe = pipes[turn % processes]
                turn += 1
                pipe.send((body, emulator.now()))
                reply, spent, waited = pipe.recv()
                plan_seconds += spent
                sync_seconds += waited
                return anthropic.types.Message.model_validate(reply)

            requests = play(workload, send, emulator, limit=limit)
            calls = 0
            for pipe in pipes:
                pipe.send(None)
                calls += int(pipe.recv())
        rows = emulator.billing.rows()
        input_cost = sum((r.cost.total - r.cost.output for r in rows if r.cost is not None), Decimal(0))
        return FleetResult(
            workload.name,
            processes,
            store is not None,
            emulator.bill_total(),
            input_cost,
            requests,
            calls,
            plan_seconds,
            sync_seconds,
        )


def run_fleet(
    workload: Workload,
    processes: int,
    *,
    store: str | None = None,
    sync: bool = True,
    limit: int | None = None,
) -> FleetResult:
    """Replay ``workload`` split round-robin over ``processes`` new planner processes; the emulator's bill."""
    with FleetReplay(processes) as replay:
        return replay.run(workload, store=store, sync=sync, limit=limit)
