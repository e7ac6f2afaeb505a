"""Sync and async from one core: a generator yields what it needs; a thin driver does the I/O.

The shape of ``httpx``'s auth flows and of the planner's ``_steps``. A core is a
generator that yields asks (:class:`Send` a request, :class:`Read` a body, plan a
request) and receives their answers, or has the exception an ask raised thrown
in at the ``yield``; it returns the result. :func:`drive` answers each ask with a
plain call, :func:`adrive` with an awaited one; they are the only difference
between the sync and the async path, so both behave alike by construction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

__all__ = ["Read", "Send", "Tapped", "adrive", "drive"]

A = TypeVar("A")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Send(Generic[R]):
    """Ask: send this request (one HTTP attempt); the answer is the response."""

    request: R


@dataclass(frozen=True, slots=True)
class Read:
    """Ask: read this request's or response's whole body (``read`` / ``aread``); the answer is bytes."""

    source: Any


@dataclass(frozen=True, slots=True)
class Tapped(Generic[R]):
    """Result: return ``response`` with its body passed through ``recorder`` as the caller reads it."""

    response: R
    recorder: Any


class _Run(Generic[A, T]):
    """A core being run: its pending ask, or (once it returned) its result."""

    def __init__(self, steps: Generator[A, Any, T]) -> None:
        self.steps = steps
        self.pending = True
        self.result: Any = None
        self.ask: A
        self._advance(lambda: next(steps))

    def reply(self, value: Any) -> None:
        self._advance(lambda: self.steps.send(value))

    def fail(self, exc: Exception) -> None:
        self._advance(lambda: self.steps.throw(exc))

    def _advance(self, step: Callable[[], A]) -> None:
        try:
            self.ask = step()
        except StopIteration as stop:
            self.pending, self.result = False, stop.value


def drive(steps: Generator[A, Any, T], answer: Callable[[A], Any]) -> T:
    """Run a core, answering each ask with ``answer(ask)``."""
    run = _Run(steps)
    while run.pending:
        try:
            value = answer(run.ask)
        except Exception as exc:
            run.fail(exc)
        else:
            run.reply(value)
    return cast(T, run.result)


async def adrive(steps: Generator[A, Any, T], answer: Callable[[A], Awaitable[Any]]) -> T:
    """Run a core, answering each ask with ``await answer(ask)``."""
    run = _Run(steps)
    while run.pending:
        try:
            value = await answer(run.ask)
        except Exception as exc:
            run.fail(exc)
        else:
            run.reply(value)
    return cast(T, run.result)
