"""``cachewise proxy`` as a team gateway: several proxy processes (and workers) on one PostgreSQL ledger."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.cli.proxy import _ClosingApp
from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger
from tests.ledger.conftest import pg_schema

API_KEY = "sk-ant-gateway-test"
SYSTEM = " ".join(f"rule{i % 97} applies to item {i}" for i in range(900))


def test_help_names_workers() -> None:
    result = CliRunner().invoke(cli, ["proxy", "--help"])
    assert result.exit_code == 0
    assert "--workers" in result.output


def test_workers_must_be_positive() -> None:
    result = CliRunner().invoke(cli, ["proxy", "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers" in result.output


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema("cw_gw_core") as (url, _):
        yield url


def _start_proxy(upstream: str, db: str, workers: int) -> tuple[subprocess.Popen[str], str]:
    args = ["proxy", "--port", "0", "--upstream", upstream, "--db", db, "--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cachewise", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"proxy on (http://\S+)", line)
    if found is None:
        proc.kill()
        rest, _ = proc.communicate()
        raise AssertionError(f"the proxy did not start: {line}{rest}")
    base = found.group(1)
    deadline = time.monotonic() + 120  # spawned workers import cachewise first: slow on a busy host
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"{base}/_not_a_route", timeout=1)
            return proc, base
        except httpx2.TransportError:
            time.sleep(0.05)
    proc.kill()
    proc.communicate()
    raise AssertionError("the proxy never listened")


def _call(base: str, i: int) -> None:
    stream = i % 2 == 1
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "stream": stream,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": f"question {i}"}],
    }
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    with httpx2.Client(base_url=base, timeout=60) as client:
        reply = client.post("/v1/messages", content=json.dumps(body), headers=headers)
        assert reply.status_code == 200, reply.text


def _stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM (as systemd stops a service), then the proxy's output."""
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hung proxy fails the test
        proc.kill()
        proc.communicate()
        raise
    return output


@pytest.mark.postgres
@pytest.mark.slow
def test_two_proxies_on_one_postgres_ledger_match_the_bill(
    claude_emulator: EmulatorServer, pg_url: str
) -> None:
    Ledger(pg_url).close()  # migrate once, so both proxies start on the same schema
    one, one_url = _start_proxy(claude_emulator.base_url, pg_url, workers=1)
    two, two_url = _start_proxy(claude_emulator.base_url, pg_url, workers=2)
    calls = 48
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: _call(one_url if i % 2 == 0 else two_url, i), range(calls)))
    finally:
        outputs = [_stop(one), _stop(two)]
    assert (one.returncode, two.returncode) == (0, 0), outputs

    bill = {row["request_id"]: row for row in claude_emulator.emulator.bill()}
    with Ledger.open_existing(pg_url) as ledger:
        rows = ledger.calls()
    assert len(bill) == calls
    assert len(rows) == calls, "a row was lost or doubled"
    assert {r.request_id for r in rows} == set(bill)
    for record in rows:
        billed = bill[record.request_id]["usage"]
        assert record.usage.input_tokens == billed["input_tokens"]
        assert record.usage.cache_read_input_tokens == billed["cache_read_input_tokens"]
        assert record.usage.cache_creation_input_tokens == billed["cache_creation_input_tokens"]
        assert record.usage.output_tokens == billed["output_tokens"]
        assert record.planned
    assert {r.endpoint for r in rows} == {"messages", "stream"}


def test_help_names_the_reuse_store_and_warm_start() -> None:
    result = CliRunner().invoke(cli, ["proxy", "--help"])
    assert result.exit_code == 0
    assert "--reuse-store" in result.output
    assert "--warm-start / --no-warm-start" in result.output


def test_an_unknown_reuse_store_is_a_usage_error_naming_the_option_and_the_kinds() -> None:
    result = CliRunner().invoke(cli, ["proxy", "--port", "0", "--reuse-store", "mysql://u:pw@db/x"])
    assert result.exit_code == 2
    assert "--reuse-store" in result.output
    assert "'mysql'" in result.output and "redis://" in result.output
    assert "u:pw@" not in result.output


def _worker_pids(base: str, want: int, deadline: float = 60) -> set[int]:
    """The pids answering ``/healthz`` (a new connection each time) once ``want`` of them answered."""
    seen: set[int] = set()
    stop = time.monotonic() + deadline
    while len(seen) < want and time.monotonic() < stop:
        try:
            seen.add(int(httpx2.get(f"{base}/healthz", timeout=5).json()["pid"]))
        except httpx2.TransportError:
            time.sleep(0.05)
    return seen


def _rows(url: str) -> int:
    with Ledger.open_existing(url) as ledger:
        return len(ledger.calls())


@pytest.mark.postgres
@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_no_row_is_lost_or_doubled(
    claude_emulator: EmulatorServer, pg_url: str
) -> None:
    """SIGKILL one of two workers once its rows are committed: the supervisor starts another, every
    later call succeeds, and the rows equal the bill."""
    Ledger(pg_url).close()
    proc, base = _start_proxy(claude_emulator.base_url, pg_url, workers=2)
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: _call(base, i), range(16)))
        before = _worker_pids(base, 2)
        assert len(before) == 2, before
        deadline = time.monotonic() + 30  # what the writers acknowledged: committed to PostgreSQL
        while _rows(pg_url) < 16 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _rows(pg_url) == 16
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        with ThreadPoolExecutor(4) as pool:  # served by the survivor, then by both
            list(pool.map(lambda i: _call(base, i), range(16, 40)))
        after = _worker_pids(base, 2, deadline=180)  # the replacement imports cachewise first
        assert victim not in after and len(after) == 2 and len(after & before) == 1, (before, after)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: _call(base, i), range(40, 48)))
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    assert "died" in output  # the supervisor's log line
    bill = {row["request_id"] for row in claude_emulator.emulator.bill()}
    with Ledger.open_existing(pg_url) as ledger:
        rows = ledger.calls()
    assert len(bill) == 48
    assert len(rows) == 48, "a row was lost or doubled"
    assert {r.request_id for r in rows} == bill


# -- the process at startup: what it holds then is kept out of later collections --------------


class _Ledger:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


async def _lifespan_app(scope: Any, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()  # other tests collect as usual
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("unfrozen")
def test_startup_freezes_what_the_process_holds_and_shutdown_closes_the_ledger() -> None:
    ledger = _Ledger()
    app = _ClosingApp(_lifespan_app, ledger)  # type: ignore[arg-type]
    frozen_at: list[int] = []
    sent: list[str] = []

    async def run() -> None:
        incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        incoming.put_nowait({"type": "lifespan.startup"})

        async def send(message: Any) -> None:
            sent.append(message["type"])
            if message["type"] == "lifespan.startup.complete":
                frozen_at.append(gc.get_freeze_count())
                incoming.put_nowait({"type": "lifespan.shutdown"})

        await app({"type": "lifespan"}, incoming.get, send)

    assert gc.get_freeze_count() == 0
    asyncio.run(run())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert frozen_at and frozen_at[0] > 1000  # the modules, their functions and classes at least
    assert gc.get_threshold()[0] == 10_000
    assert ledger.closed == 1


@pytest.mark.usefixtures("unfrozen")
def test_a_request_does_not_freeze() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = _ClosingApp(inner, _Ledger())  # type: ignore[arg-type]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "GET", "path": "/"}, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] != 10_000
