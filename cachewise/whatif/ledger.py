"""Replay the ledger's recorded calls under each caching strategy, without prompt text (docs/why.md).

Each call the tracker recorded keeps its replay points (``calls.replay``, :mod:`cachewise.diagnose.replay`):
per cache position its prefix hash, the tokens of the prefix ending there, its level and the marker
TTL it carried. Replay feeds them, in time order, to the emulator's own
:class:`~cachewise.emulator.engine.CacheEngine` (a cache keyed on the prefix hashes: the model's
minimum, TTLs of 5m and 1h from each request's start, the 20-position lookback) in virtual time, with
the markers each strategy would place:

``recorded``  the markers the call carried;
``none``      no markers;
``auto``      one marker (5m) on the last position (automatic caching);
``static``    one marker (5m) on the last system position, else the last tool;
``planner``   the caller's markers and those the default planner adds: the planner plans each call
              from its recorded positions (:mod:`.planned`) at its recorded time and learns from
              the usage the replay bills.

The prompt (input, cache writes, cache reads) is priced with the price book at each call's time, in
exact ``Decimal``. Calls recorded without replay points (before ledger step 0008, imported, batch
results) are left out and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..api_rules import Ttl
from ..emulator.engine import CacheEngine
from ..emulator.positions import Cut, Layout, ServerMarker
from ..ledger import CallRecord
from ..planner import Plan
from ..pricing import PriceBook, price
from ..usage import Usage
from .planned import RecordedPlanner, RecordedPrompt
from .requests import Outcome

__all__ = ["LEDGER_STRATEGIES", "Recorded", "marks", "recorded_calls", "replay_recorded"]

LEDGER_STRATEGIES: tuple[str, ...] = ("recorded", "none", "auto", "static", "planner")


@dataclass(frozen=True, slots=True)
class Recorded:
    """The calls a ledger holds replay points for, oldest first, and how many it had not."""

    calls: tuple[CallRecord, ...]
    without: int


def recorded_calls(records: Sequence[CallRecord]) -> Recorded:
    """The records that can be replayed (their replay points are known), oldest first."""
    kept = [r for r in records if r.replay and r.replay.get("points")]
    kept.sort(key=lambda r: r.started_at)
    return Recorded(tuple(kept), len(records) - len(kept))


def marks(strategy: str, points: Sequence[Sequence[Any]]) -> dict[int, Ttl]:
    """The positions ``strategy`` marks on a call with ``points``, and the TTL of each.

    ``planner`` is not a fixed rule: :func:`replay_recorded` asks the planner per call.
    """
    if strategy == "recorded":
        return {i: p[3] for i, p in enumerate(points) if p[3] in ("5m", "1h")}
    if strategy == "none" or not points:
        return {}
    if strategy == "auto":
        return {len(points) - 1: "5m"}
    if strategy == "static":
        for level in ("system", "tools"):
            at = [i for i, p in enumerate(points) if p[2] == level]
            if at:
                return {at[-1]: "5m"}
        return {}
    fixed = ", ".join(s for s in LEDGER_STRATEGIES if s != "planner")
    raise ValueError(f"strategy {strategy!r}: expected one of {fixed}")


_Rule = tuple[Callable[[CallRecord], dict[int, Ttl]], Callable[[Usage], None]]


def _fixed(strategy: str) -> _Rule:
    """A fixed rule (:func:`marks`) per call; it learns nothing."""

    def marked(call: CallRecord) -> dict[int, Ttl]:
        return marks(strategy, _points_of(call))

    def learn(usage: Usage) -> None:
        return None

    return marked, learn


def _planned(book: PriceBook) -> _Rule:
    """Per call, the markers the planner would place; and what it learns from the replayed usage."""
    planner = RecordedPlanner(book)
    last: list[tuple[Plan, datetime]] = []

    def marked(call: CallRecord) -> dict[int, Ttl]:
        try:
            prompt = RecordedPrompt.of(call)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise ValueError(f"call {call.request_id}: its replay points cannot be read ({exc})") from exc
        plan = planner.plan_recorded(prompt, call.started_at)
        last[:] = [(plan, call.started_at)]
        out: dict[int, Ttl] = {}
        for b in plan.breakpoints:
            out[b.position] = "1h" if "1h" in (b.ttl, out.get(b.position)) else b.ttl
        return out

    def learn(usage: Usage) -> None:
        plan, at = last[0]
        planner.observe(plan, usage, at)

    return marked, learn


def _layout(model: str, tokens: int, points: Sequence[Sequence[Any]], marked: dict[int, Ttl]) -> Layout:
    cuts = tuple(
        Cut(
            seq=i,
            position=i,
            path=str(i),
            end=int(p[1]),
            digest=bytes.fromhex(str(p[0])),
            markers=[ServerMarker(marked[i], str(i))] if i in marked else [],
        )
        for i, p in enumerate(points)
    )
    return Layout(model, (), tokens, len(marked), cuts)


def _points_of(call: CallRecord) -> Sequence[Sequence[Any]]:
    """The replay points of ``call`` (none if it has none)."""
    points: Sequence[Sequence[Any]] = (call.replay or {}).get("points") or ()
    return points


def _minimum(book: PriceBook, model: str, at: datetime) -> int:
    try:
        return book.min_cache_tokens(model, at).tokens
    except Exception:  # an unknown model: no minimum to hold it to
        return 0


def replay_recorded(calls: Sequence[CallRecord], strategy: str, book: PriceBook | None = None) -> Outcome:
    """Replay ``calls`` (with replay points) under ``strategy`` in virtual time; the prompt's cost."""
    if strategy not in LEDGER_STRATEGIES:
        raise ValueError(f"strategy {strategy!r}: expected one of {', '.join(LEDGER_STRATEGIES)}")
    used = book if book is not None else PriceBook.default()
    engine = CacheEngine()
    marked, learn = _planned(used) if strategy == "planner" else _fixed(strategy)
    cost, inp, write, read, n = Decimal(0), 0, 0, 0, 0
    for call in sorted(calls, key=lambda r: r.started_at):
        points = (call.replay or {}).get("points") or ()
        if not points:
            continue
        tokens = int((call.replay or {}).get("tokens", points[-1][1]))
        layout = _layout(call.model, tokens, points, marked(call))
        minimum = _minimum(used, call.model, call.started_at)
        ticket = engine.begin(
            layout, workspace="", start=call.started_at, request_id=call.request_id, min_tokens=minimum
        )
        engine.commit(ticket)
        usage = Usage(
            input_tokens=ticket.input_tokens,
            cache_read_input_tokens=ticket.cache_read_input_tokens,
            ephemeral_5m_input_tokens=ticket.ephemeral_5m_input_tokens,
            ephemeral_1h_input_tokens=ticket.ephemeral_1h_input_tokens,
        )
        learn(usage)
        cost += price(used, usage, call.model, call.started_at).total
        inp += usage.input_tokens
        write += usage.cache_creation_input_tokens
        read += usage.cache_read_input_tokens
        n += 1
    return Outcome(strategy, n, cost, inp, write, read)
