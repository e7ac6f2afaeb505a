"""Fixtures for the wrapper tests: the emulator comes from cachewise's own pytest plugin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger

API_KEY = "sk-ant-wrap-test"


@pytest.fixture
def emulator(claude_emulator: EmulatorServer) -> EmulatorServer:
    """The plugin's session emulator, reset for the test (cache, clock, bill, faults)."""
    return claude_emulator


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened
