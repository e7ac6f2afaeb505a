"""``cachewise proxy``'s process at startup: what it holds then is kept out of later collections,
and the youngest generation is collected less often."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from cachewise.cli.proxy import _ClosingApp


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
