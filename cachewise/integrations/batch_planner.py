"""Batch create requests planned as a whole: breakpoints at the prefixes the batch's requests share.

:class:`BatchPlanner` counts how many of a batch's requests share each prefix boundary and marks,
in each request, the ends of the prefixes it shares with enough others (its docstring has the rule,
:data:`BATCH_TTL` the TTL and why). The wrapper and the proxy import this module only when they
plan, so ``import cachewise`` does not load the token counter.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..api_rules import MAX_MARKERS, Ttl
from ..planner.body import copy_body, set_marker
from ..pricing import PriceBook
from ..prompt import Prompt
from ..tokens import prefix_bounds

__all__ = ["BATCH_TTL", "MIN_SHARERS", "BatchMark", "BatchPlanner", "planned_batch"]

#: The TTL of batch breakpoints. Batches run asynchronously and concurrently and commonly take
#: 5 minutes to an hour, so the prompt-caching docs advise the 1-hour cache for shared batch
#: prefixes (docs/api-notes.md §2.5); a batch may take up to 24 hours, past any TTL.
BATCH_TTL: Ttl = "1h"
#: A 1h write (2× input) pays off after two reads (docs/api-notes.md §6.1): a prefix is marked
#: only if at least this many requests of the batch share it (one writes, the others read).
MIN_SHARERS = 3


@dataclass(frozen=True, slots=True)
class BatchMark:
    """One breakpoint the batch planner put on a request: where, and how many requests share it."""

    custom_id: str
    path: str
    position: int
    sharers: int
    ttl: Ttl


def _boundaries(prompt: Prompt, shared: Counter[str], least: int) -> list[tuple[int, int]]:
    """(position, sharers) at each end of a shared run: the next position is shared by fewer."""
    out: list[tuple[int, int]] = []
    positions = prompt.positions
    for i, pos in enumerate(positions):
        k = shared[pos.prefix_hash]
        if k < least:
            break  # prefixes only grow: a longer one is shared by at most as many
        nxt = shared[positions[i + 1].prefix_hash] if i + 1 < len(positions) else 0
        if nxt < k:
            out.append((i, k))
    return out


class BatchPlanner:
    """Places breakpoints on a batch's requests at the prefixes they share.

    For each request, every position where the number of requests sharing its prefix
    drops (the end of the system prompt all of them share, the end of a document a
    group of them share) is a candidate; candidates shared by fewer than
    :data:`MIN_SHARERS` requests, those whose byte bounds are below the model's minimum
    cacheable length, and those the API's TTL order would refuse are dropped, and the
    longest fit into the request's free marker slots (4 minus the caller's own markers).
    Markers are :data:`BATCH_TTL`. The user's body is never changed: the planned batch is
    a copy. ``marks`` keeps the last plan's breakpoints.
    """

    def __init__(
        self,
        *,
        book: PriceBook | None = None,
        clock: Callable[[], datetime] | None = None,
        collapse_runs: bool = True,
        ttl: Ttl = BATCH_TTL,
        min_sharers: int = MIN_SHARERS,
    ) -> None:
        self.book = book if book is not None else PriceBook.default()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.collapse_runs = collapse_runs
        self.ttl: Ttl = ttl
        self.min_sharers = max(2, min_sharers)
        self.marks: list[BatchMark] = []

    def plan(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """The batch create body with breakpoints on shared prefixes, or ``None`` if nothing changed."""
        requests = body.get("requests")
        if not isinstance(requests, list):
            return None
        prompts: dict[int, Prompt] = {}
        for i, item in enumerate(requests):
            params = item.get("params") if isinstance(item, Mapping) else None
            if isinstance(params, Mapping) and isinstance(params.get("messages"), list):
                prompts[i] = Prompt(params, collapse_runs=self.collapse_runs)
        shared: Counter[str] = Counter()
        for prompt in prompts.values():
            shared.update({p.prefix_hash for p in prompt.positions})
        planned = copy_body(body)
        marks: list[BatchMark] = []
        for i, prompt in prompts.items():
            params = planned["requests"][i]["params"]
            custom_id = str(planned["requests"][i].get("custom_id"))
            for index, sharers, ttl in self._choose(prompt, shared):
                path = set_marker(params, prompt.positions[index], ttl)
                marks.append(BatchMark(custom_id, path, index, sharers, ttl))
        self.marks = marks
        return planned if marks else None

    def _choose(self, prompt: Prompt, shared: Counter[str]) -> list[tuple[int, int, Ttl]]:
        free = MAX_MARKERS - len(prompt.markers) - (1 if prompt.auto is not None else 0)
        if free <= 0:
            return []
        taken = {m.position for m in prompt.markers}
        short = [m.position for m in prompt.markers if m.ttl == "5m"]
        if prompt.auto is not None:
            short.append(len(prompt.positions) - 1)  # the automatic marker: 5m, on the last block
        long = [m.position for m in prompt.markers if m.ttl == "1h"]
        minimum = self.book.min_cache_tokens(prompt.model, self.clock()).tokens if prompt.model else 0
        chosen: list[tuple[int, int, Ttl]] = []
        for index, sharers in reversed(_boundaries(prompt, shared, self.min_sharers)):
            pos = prompt.positions[index]
            if not pos.plannable or index in taken:
                continue
            if prefix_bounds(prompt, index, {}, []).high < minimum:
                continue  # surely below the minimum: the API would not cache it
            ttl: Ttl = "5m" if any(p < index for p in short) else self.ttl
            if ttl == "5m" and any(p > index for p in long):
                continue  # a 5m marker before a 1h one: the API refuses the order
            chosen.append((index, sharers, ttl))
            if len(chosen) == free:
                break
        return chosen


def planned_batch(planner: BatchPlanner, content: bytes) -> bytes:
    """A batch create body (JSON bytes) planned by ``planner``; ``content`` itself if nothing changed."""
    body = json.loads(content)
    planned = planner.plan(body) if isinstance(body, Mapping) else None
    if planned is None:
        return content
    return json.dumps(planned, ensure_ascii=False, separators=(",", ":")).encode()
