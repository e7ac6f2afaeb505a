"""Fan-out through the proxy and through the transports: one write, N-1 reads; batches planned."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import pytest

from cachewise.emulator import EmulatorServer
from cachewise.integrations.batch_planner import BatchPlanner
from cachewise.integrations.fanout import FanOut
from cachewise.integrations.proxy import create_proxy_app
from cachewise.integrations.proxy_planner import upstream_planner
from cachewise.integrations.tracker import CallTracker
from cachewise.integrations.transport import CachewiseTransport
from cachewise.ledger import Ledger
from cachewise.planner import CachePlanner
from cachewise.tokens import TokenCounter
from cachewise.workloads import batch_jobs
from tests.fixtures.servers import serve

from .conftest import API_KEY
from .test_fanout import N, _body, _open_when_all_in_flight, _shared_tokens, _writes_and_reads


def _proxied(emulator: EmulatorServer, ledger: Ledger, fanout: FanOut) -> Iterator[str]:
    tracker = CallTracker(
        ledger=ledger, planner=upstream_planner(emulator.base_url), clock=emulator.emulator.now
    )
    app = create_proxy_app(tracker, upstream=emulator.base_url, fanout=fanout, batch_planner=BatchPlanner())
    yield from serve(app)


@pytest.fixture
def holding(emulator: EmulatorServer, ledger: Ledger) -> Iterator[str]:
    yield from _proxied(emulator, ledger, FanOut("hold", timeout=10))


@pytest.fixture
def open_proxy(emulator: EmulatorServer, ledger: Ledger) -> Iterator[str]:
    yield from _proxied(emulator, ledger, FanOut("off"))


async def _gather(base_url: str, key: str = API_KEY) -> list[Any]:
    async with anthropic.AsyncAnthropic(api_key=key, base_url=base_url, max_retries=0) as client:
        return list(await asyncio.gather(*(client.messages.create(**_body(i)) for i in range(N))))


def test_the_proxy_holds_a_fan_out(holding: str, emulator: EmulatorServer) -> None:
    emulator.emulator.faults.add("delay", count=N, seconds=0.3)
    asyncio.run(_gather(holding))
    assert _writes_and_reads(emulator.emulator, _shared_tokens(emulator.emulator)) == (1, N - 1)


def test_without_hold_the_proxy_fan_out_writes_n_times(open_proxy: str, emulator: EmulatorServer) -> None:
    opener = _open_when_all_in_flight(emulator.emulator, N)
    asyncio.run(_gather(open_proxy))
    opener.join(30)
    assert _writes_and_reads(emulator.emulator, _shared_tokens(emulator.emulator)) == (N, 0)


def test_the_proxy_holds_per_api_key(holding: str, emulator: EmulatorServer) -> None:
    """Two keys are two workspaces: neither waits for the other, each writes once."""
    emulator.emulator.faults.add("delay", count=2 * N, seconds=0.3)

    async def both() -> None:
        await asyncio.gather(_gather(holding, API_KEY), _gather(holding, API_KEY + "-other"))

    asyncio.run(both())
    assert _writes_and_reads(emulator.emulator, _shared_tokens(emulator.emulator)) == (2, 2 * N - 2)


def test_the_proxy_plans_batches(holding: str, emulator: EmulatorServer) -> None:
    with anthropic.Anthropic(api_key=API_KEY, base_url=holding, max_retries=0) as client:
        batch = client.messages.batches.create(**batch_jobs(1))
        emulator.emulator.advance(60)
        results = list(client.messages.batches.results(batch.id))
    assert len(results) == len(batch_jobs(1)["requests"])
    reads = sum(r.usage["cache_read_input_tokens"] for r in emulator.emulator.billing.rows())
    assert reads > 0  # the body as written has no marker: only the batch planner's breakpoints read


def test_the_transport_holds_a_fan_out(emulator: EmulatorServer, ledger: Ledger) -> None:
    emu = emulator.emulator
    with anthropic.Anthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=0) as counting:
        planner = CachePlanner(counter=TokenCounter(counting), clock=emu.now)
        tracker = CallTracker(ledger=ledger, planner=planner, clock=emu.now)
        transport = CachewiseTransport(tracker, fanout=FanOut("hold", timeout=10))
        http = httpx2.Client(transport=transport)
        with anthropic.Anthropic(
            api_key=API_KEY, base_url=emulator.base_url, max_retries=0, http_client=http
        ) as client:
            emu.faults.add("delay", count=N, seconds=0.3)
            threads = [threading.Thread(target=client.messages.create, kwargs=_body(i)) for i in range(N)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
    assert _writes_and_reads(emu, _shared_tokens(emu)) == (1, N - 1)
    assert emu.bill_total() > Decimal(0)
