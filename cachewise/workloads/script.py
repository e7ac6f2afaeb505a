"""A workload as a script: a generator that yields timed requests and is sent each reply.

The script is the core and does no I/O (the shape of the planner's ``_steps`` and of httpx's auth
flows): it yields a :class:`Call`, the driver sends the request and hands the reply back with
``send``, and the script may build its next request from it (a chat appends the assistant's turn).
When it is over the script returns the time at which its traffic ends, so workloads replayed one
after another on one clock keep their gaps. :func:`play` is the one driver: a ``send`` callable
does the request (any client, any strategy) and an optional :class:`Clock` is moved forward to each
call's time (virtual time on the emulator; without a clock, nothing waits).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = ["Call", "Clock", "Script", "Workload", "play", "send_with"]


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a workload: ``at`` seconds after the workload starts.

    ``request`` holds the keyword arguments of ``client.messages.create``, written as a user would
    write them, with no ``cache_control`` anywhere: placing breakpoints is cachewise's job.
    """

    at: float
    request: dict[str, Any]


Script = Generator[Call, Any, float]
"""Yields each call, is sent each reply (``None`` when the driver has none), returns its end time."""


class Clock(Protocol):
    """What :func:`play` needs of a clock; :class:`~cachewise.emulator.Emulator` is one."""

    def now(self) -> datetime: ...

    def advance(self, seconds: float) -> object: ...


@dataclass(frozen=True, slots=True)
class Workload:
    """A named traffic shape; ``script()`` starts a fresh, deterministic run of it."""

    name: str
    description: str
    script: Callable[[], Script]

    @classmethod
    def of(cls, name: str, description: str, calls: Sequence[Call]) -> Workload:
        """A workload whose requests do not depend on the replies; it ends at its latest call."""
        fixed = tuple(calls)

        def script() -> Script:
            for call in fixed:  # noqa: UP028 (play() sends replies; a tuple iterator has no send())
                yield call
            return max((call.at for call in fixed), default=0.0)

        return cls(name, description, script)

    def calls(self) -> Iterator[Call]:
        """The calls as the script yields them when no reply is sent back (``None`` each time)."""
        yield from self.script()


def play(
    workload: Workload,
    send: Callable[[dict[str, Any]], Any],
    clock: Clock | None = None,
    *,
    limit: int | None = None,
) -> int:
    """Run ``workload``: ``send`` each request and pass its reply back; return the number of calls.

    With a ``clock``, it is advanced before each call to the call's time (never backwards) and,
    when the script ends, to its end time. ``limit`` stops after that many calls.
    """
    script = workload.script()
    start = clock.now() if clock is not None else None
    sent = 0

    def wait_until(at: float) -> None:
        if clock is not None and start is not None:
            lag = at - (clock.now() - start).total_seconds()
            if lag > 0:
                clock.advance(lag)

    try:
        call = next(script)
        while limit is None or sent < limit:
            wait_until(call.at)
            reply = send(call.request)
            sent += 1
            call = script.send(reply)
    except StopIteration as stop:
        wait_until(stop.value)
    finally:
        script.close()
    return sent


def send_with(client: Any) -> Callable[[dict[str, Any]], Any]:
    """A ``send`` for :func:`play`: ``client.messages.create(**request)`` (a plain or wrapped client)."""

    def send(request: dict[str, Any]) -> Any:
        return client.messages.create(**request)

    return send
