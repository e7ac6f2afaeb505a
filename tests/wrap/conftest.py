from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger

API_KEY = "sk-ant-wrap-test"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as running:
        yield running


@pytest.fixture
def emulator(server: EmulatorServer) -> EmulatorServer:
    server.emulator.reset()
    return server


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened
