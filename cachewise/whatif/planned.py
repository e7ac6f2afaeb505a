"""The planner on recorded calls: its view of a request rebuilt from the ledger's replay points.

The planner (:class:`~cachewise.planner.CachePlanner`) reads a request as cache positions
(:class:`~cachewise.prompt.Prompt`): per position its prefix hash, level, block type, whether a
marker may go there and its byte sizes; per request the caller's markers and the top-level one.
The ledger keeps exactly these per call, without prompt text (:mod:`cachewise.diagnose.replay`), so
:class:`RecordedPrompt` rebuilds that view and :class:`RecordedPlanner`, the planner itself with
only its reading of the body replaced (``_read``), plans it: candidates, valuation, counting and
choice are the planner's own code. Its counts come from the recorded sizes
(:class:`RecordedCounter`): exact where the call counted them (``counted``), else the recorded
estimate, and :attr:`RecordedCounter.estimated` says how many were. The planner's clock is each
call's recorded start, and it learns from the usage the replay bills, as it does live.

Rows written before the replay points carried block types and byte sizes are read with the block
type ``text``, every position markable and four bytes per token; before they carried the caller's
markers, every marker the call sent counts as the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from ..api_rules import Ttl
from ..errors import TokenCountError
from ..ledger import CallRecord
from ..planner import CachePlanner, Plan
from ..pricing import PriceBook
from ..prompt import Level, Marker, Position, Prompt
from ..tokens import TokenCounter, TokenMemo

__all__ = ["RecordedCounter", "RecordedPlanner", "RecordedPrompt"]

_BYTES_PER_TOKEN = 4  # rows without byte sizes: a typical English text's canonical bytes per token
_LEVELS: tuple[Level, ...] = ("tools", "system", "messages")


def _ttl(value: Any) -> Ttl:
    return "1h" if value == "1h" else "5m"


class RecordedPrompt(Prompt):
    """A recorded call read as the planner's cache positions (prefix hashes, sizes; no text).

    ``sizes`` are the recorded tokens of each prefix and ``counted`` whether each is exact. The
    body (:attr:`body`) is a skeleton of empty blocks with the request's shape, so the planner's
    markers can be put on it; its breakpoints name the positions.
    """

    __slots__ = ("counted", "counts", "memoised", "sizes")

    def __init__(self, model: str, replay: Mapping[str, Any]) -> None:
        points: Sequence[Sequence[Any]] = replay.get("points") or ()
        full = all(len(p) >= 9 for p in points)
        self.model = model
        self.sizes: tuple[int, ...] = tuple(int(p[1]) for p in points)
        self.counted: tuple[bool, ...] = tuple(bool(p[4]) for p in points)
        # What the live planner knew exactly (count_tokens answers and memo hits) and which of it its
        # memo held before planning; None: the call was not planned (or recorded before this was kept).
        counts = replay.get("counts")
        self.counts: dict[int, int] | None = None
        self.memoised: frozenset[int] = frozenset()
        if counts is not None:
            self.counts = {int(at): int(tokens) for at, tokens, _ in counts}
            self.memoised = frozenset(int(at) for at, _, held in counts if held)
        levels: list[Level] = []
        for i, p in enumerate(points):
            level = p[2]
            if level not in _LEVELS:
                raise ValueError(f"replay point {i}: level {level!r} is not one of {', '.join(_LEVELS)}")
            levels.append(cast(Level, level))
        cum_b = [int(p[7]) if full else int(p[1]) * _BYTES_PER_TOKEN for p in points]
        cum_t = [int(p[8]) if full else int(p[1]) * _BYTES_PER_TOKEN for p in points]
        tools = sum(1 for level in levels if level == "tools")
        system = sum(1 for level in levels if level == "system")
        positions: list[Position] = []
        for i, p in enumerate(points):
            level = levels[i]
            at = i if level == "tools" else i - tools if level == "system" else i - tools - system
            path = {"tools": f"tools.{at}", "system": f"system.{at}"}.get(level, f"messages.0.content.{at}")
            markable = bool(p[6]) if full else True
            positions.append(
                Position(
                    index=i,
                    level=level,
                    path=path,
                    kind=str(p[5]) if full else "text",
                    message=0 if level == "messages" else None,
                    block=at if level == "messages" else None,
                    role="user" if level == "messages" else None,
                    markable=markable,
                    why_not=None if markable else "not markable (as recorded)",
                    nbytes=cum_b[i] - (cum_b[i - 1] if i else 0),
                    text_bytes=cum_t[i] - (cum_t[i - 1] if i else 0),
                    prefix_hash=str(p[0]),
                )
            )
        # The fields Prompt's own reading fills (cachewise/prompt.py), here from the recorded points.
        self._all = tuple(positions)
        self._made = list(positions)
        self._rows = [
            (pos.level, pos.kind, pos.message, pos.block, pos.role, pos.why_not, False, False, False)
            for pos in positions
        ]
        self.hashes = tuple(pos.prefix_hash for pos in positions)
        self.kinds = tuple(pos.kind for pos in positions)
        self.markable = tuple(pos.markable for pos in positions)
        self._plannable = list(self.markable)
        self._last_markable = next((i for i in range(len(positions) - 1, -1, -1) if self.markable[i]), None)
        self._cum_bytes = cum_b
        self._cum_text = cum_t
        ends: dict[Level, int] = {}
        for i, level in enumerate(levels):
            ends[level] = i
        self.level_ends = ends
        head = ends.get("system", ends.get("tools"))
        self.family = positions[head].prefix_hash if head is not None else f"model:{model}"
        caller = replay.get("caller")
        if caller is None:  # written before the caller's markers were kept: every marker sent
            caller = [[i, p[3]] for i, p in enumerate(points) if p[3] in ("5m", "1h")]
        inside = [(int(at), ttl) for at, ttl in caller if 0 <= int(at) < len(points)]
        self.markers = tuple(Marker(positions[at].path, at, _ttl(ttl)) for at, ttl in inside)
        auto = replay.get("auto")
        self.auto = None if auto is None else _ttl(auto)
        body: dict[str, Any] = {"model": model}
        if tools:
            body["tools"] = [{} for _ in range(tools)]
        if system:
            body["system"] = [{} for _ in range(system)]
        body["messages"] = [{"role": "user", "content": [{} for _ in range(len(points) - tools - system)]}]
        self.body = body

    @classmethod
    def of(cls, call: CallRecord) -> RecordedPrompt:
        """The recorded call ``call`` (with replay points) as the planner reads it."""
        return cls(call.model, call.replay or {})


class RecordedCounter(TokenCounter):
    """Answers the planner's counts from the recording, with the counter's own memo (in memory).

    A call the planner planned live is answered as live: what its memo knew before planning
    (:meth:`known`), and each count with the count_tokens answer the live planner got (a count
    that failed live fails here). Other calls are answered with the recorded sizes; ``estimated``:
    how many of those answers were recorded estimates, not counts.
    """

    def __init__(self) -> None:
        super().__init__(lambda body: 0, memo=TokenMemo(None), namespace="whatif")
        self.estimated = 0

    def known(self, prompt: Prompt) -> dict[int, int]:
        if isinstance(prompt, RecordedPrompt) and prompt.counts is not None:
            return {at: prompt.counts[at] for at in prompt.memoised}
        return super().known(prompt)

    def count(self, prompt: Prompt, index: int, *, deadline: float | None = None, apart: bool = False) -> int:
        if apart:  # a count for the ledger only (the replay's ledger is its bill): nothing to learn
            raise TokenCountError("the replay keeps no ledger")
        if isinstance(prompt, RecordedPrompt) and prompt.counts is not None:
            tokens = prompt.counts.get(index)
            if tokens is None:
                raise TokenCountError(f"position {index} was not counted when the call was planned")
        else:
            hit = self.cached(prompt, index)
            if hit is not None:
                return hit
            if not isinstance(prompt, RecordedPrompt) or not 0 <= index < len(prompt.sizes):
                raise TokenCountError(f"position {index} has no recorded size")
            self.estimated += not prompt.counted[index]
            tokens = prompt.sizes[index]
        self.calls += 1
        self.memo.put(self.namespace, prompt.model, prompt.prefix_hash(index), tokens)
        return tokens


class RecordedPlanner(CachePlanner):
    """The default planner, planning recorded calls in their recorded time (:meth:`plan_recorded`)."""

    def __init__(self, book: PriceBook | None = None) -> None:
        self.at: datetime | None = None
        super().__init__(RecordedCounter(), book=book, clock=self._clock, count_budget=None)
        self._pending: RecordedPrompt | None = None

    def _clock(self) -> datetime:
        if self.at is None:
            raise ValueError("RecordedPlanner: no recorded time to plan at (use plan_recorded)")
        return self.at

    def plan_recorded(self, prompt: RecordedPrompt, at: datetime) -> Plan:
        """The planner's plan of ``prompt`` as if sent at ``at``."""
        self.at, self._pending = at, prompt
        try:
            return self.plan(prompt.body)
        finally:
            self._pending = None

    def _read(self, request: Mapping[str, Any]) -> Prompt:
        if self._pending is None:
            raise ValueError("RecordedPlanner plans recorded calls only (use plan_recorded)")
        return self._pending

    @property
    def estimated(self) -> int:
        """How many of the planner's counts were answered with recorded estimates."""
        counter = self.counter
        return counter.estimated if isinstance(counter, RecordedCounter) else 0
