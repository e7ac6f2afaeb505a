"""The gateway over real sockets: SDK -> GatewayApp(proxy) -> emulator, with a SQLite ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cachewise.budget import BudgetSpec
from cachewise.emulator import EmulatorServer
from cachewise.gateway import GatewayApp, GatewayBudgets, ProxyMetrics
from cachewise.integrations.proxy import create_proxy_app
from cachewise.integrations.tracker import CallTracker
from cachewise.ledger import Ledger
from tests.fixtures.servers import serve

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 24,
    "system": "A long and stable operating manual. " * 500,
    "messages": [{"role": "user", "content": "How do I reset my password?"}],
}


@pytest.fixture
def emulator(claude_emulator: EmulatorServer) -> EmulatorServer:
    return claude_emulator


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite", spool_dir=tmp_path / "spool") as opened:
        yield opened


Gateway = Callable[..., str]


@pytest.fixture
def gateway(emulator: EmulatorServer, ledger: Ledger) -> Iterator[Gateway]:
    """``gateway(budgets, ledger=..., metrics=...)``: a running gateway's base URL."""
    servers: list[Iterator[str]] = []

    def start(
        budgets: Sequence[BudgetSpec] = (),
        *,
        on: Ledger | None = None,
        metrics: ProxyMetrics | None = None,
        refresh_seconds: float = 0,
    ) -> str:
        book_ledger = on if on is not None else ledger
        guard = GatewayBudgets(
            budgets,
            book_ledger,
            clock=emulator.emulator.now,
            refresh_seconds=refresh_seconds,
            on_refusal=metrics.refused if metrics is not None else None,
            on_read=metrics.budget_read if metrics is not None else None,
        )
        sinks: list[Any] = [guard] + ([metrics] if metrics is not None else [])
        tracker = CallTracker(ledger=book_ledger, clock=emulator.emulator.now, sinks=sinks)
        app = GatewayApp(
            create_proxy_app(tracker, upstream=emulator.base_url, admit=guard.admit),
            metrics=metrics,
            budgets=guard,
        )
        running = serve(app)
        servers.append(running)
        return next(running)

    yield start
    for running in servers:
        next(running, None)
