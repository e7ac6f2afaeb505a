"""Fixtures for the emulator tests: the plugin's fixtures plus an in-process emulator and client.

Token arithmetic used throughout (docs/emulator.md, "Tokenizer"):
``words(n)`` is ``n`` tokens; a text block costs ``n + 3``; a message adds 4 to its first
block; every request ends with a 3-token tail that is never cached.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest
from emulator_helpers import sdk

from cachewise.emulator import Emulator


@pytest.fixture
def emu() -> Emulator:
    return Emulator()


@pytest.fixture
def client(emu: Emulator) -> Iterator[anthropic.Anthropic]:
    with sdk(emu) as c:
        yield c
