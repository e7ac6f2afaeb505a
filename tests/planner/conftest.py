"""Fixtures for the planner tests: a small price table, a virtual clock, a fake count_tokens.

The fake count is ``len(compact JSON of tools + system + messages) // 4``: deterministic,
monotone in the prefix, and inside the offline bounds of :mod:`cachewise.tokens`
(tokens ≤ bytes, tokens ≥ text bytes / 8).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cachewise.planner import CachePlanner
from cachewise.pricing import PriceBook
from cachewise.tokens import TokenCounter, TokenMemo
from tests.strategies import words as words  # the planner tests import it from here

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

TABLE = """
schema_version: 1
version: "test-1"
currency: USD
models:
  - id: claude-test
    name: Claude Test
    family: sonnet
    prices:
      - from: 2024-01-01
        input: "3"
        cache_write_5m: "3.75"
        cache_write_1h: "6"
        cache_read: "0.30"
        output: "15"
    min_cache_tokens:
      - from: 2024-01-01
        tokens: 1024
    source: test
    checked: 2026-11-20
  - id: claude-unsure
    name: Claude Unsure
    family: haiku
    prices:
      - from: 2024-01-01
        input: "1"
        cache_write_5m: "1.25"
        cache_write_1h: "2"
        cache_read: "0.10"
        output: "5"
    min_cache_tokens:
      - from: 2024-01-01
        tokens: 2048
        uncertain: "not published (test)"
    source: test
    checked: 2026-11-20
"""


class VirtualClock:
    """An aware-UTC clock that only moves when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def fake_tokens(body: dict[str, Any]) -> int:
    parts = {k: body[k] for k in ("tools", "system", "messages") if k in body}
    return len(json.dumps(parts, separators=(",", ":"))) // 4


class FakeCount:
    """A count function that records every body it is sent; ``fail`` makes it raise."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, body: dict[str, Any]) -> int:
        self.bodies.append(body)
        if self.fail is not None:
            raise self.fail
        return fake_tokens(body)


@pytest.fixture
def book(tmp_path: Path) -> PriceBook:
    path = tmp_path / "prices.yaml"
    path.write_text(TABLE, encoding="utf-8")
    return PriceBook.load(base=path)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def count() -> FakeCount:
    return FakeCount()


@pytest.fixture
def memo() -> TokenMemo:
    return TokenMemo(None)


@pytest.fixture
def make_planner(
    book: PriceBook, clock: VirtualClock, count: FakeCount, memo: TokenMemo
) -> Callable[..., CachePlanner]:
    def make(**kwargs: Any) -> CachePlanner:
        counter = kwargs.pop("counter", TokenCounter(count, memo=memo))
        return CachePlanner(counter, book=book, clock=clock, **kwargs)

    return make
