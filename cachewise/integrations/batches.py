"""Message Batches through the wrapper or the proxy: planned on create, one ledger row per result.

:class:`BatchPlanner` plans a batch create request as a whole: it counts how many of the
batch's requests share each prefix boundary and marks, in each request, the ends of the
prefixes it shares with enough others (see its docstring for the rule and the TTL).

A results body is JSON Lines; :class:`ResultLines` watches it as it passes (the
bytes are not changed or held back beyond one incomplete line) and hands each
complete line to :meth:`CallTracker.record_batch_line`. Rows are keyed
``"{batch_id}:{custom_id}"``, so reading the same results twice never doubles a
row in the ledger. :class:`BatchTimes` remembers when each batch seen was
created, so its results are dated by the batch, not by when they were read.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..api_rules import MAX_MARKERS, Ttl
from ..planner.body import copy_body, set_marker
from ..pricing import PriceBook
from ..prompt import Prompt
from ..tokens import prefix_bounds

if TYPE_CHECKING:
    from .tracker import CallTracker

__all__ = ["BATCH_TTL", "BatchMark", "BatchPlanner", "BatchTimes", "ResultLines", "planned_batch"]

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


_REMEMBERED = 10_000  # batch creation times kept (oldest forgotten first)


def planned_batch(planner: BatchPlanner, content: bytes) -> bytes:
    """A batch create body (JSON bytes) planned by ``planner``; ``content`` itself if nothing changed."""
    body = json.loads(content)
    planned = planner.plan(body) if isinstance(body, Mapping) else None
    if planned is None:
        return content
    return json.dumps(planned, ensure_ascii=False, separators=(",", ":")).encode()


class BatchTimes:
    """When each batch this client or proxy has seen was created."""

    def __init__(self) -> None:
        self._times: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, payload: Any) -> None:
        """Note the ``created_at`` of a batch object, or of each batch in a list page."""
        if not isinstance(payload, Mapping):
            return
        if payload.get("type") != "message_batch":
            page = payload.get("data")
            for item in page if isinstance(page, list) else ():
                self.remember(item)
            return
        batch_id, created = payload.get("id"), payload.get("created_at")
        if not batch_id or not created:
            return
        at = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        with self._lock:
            self._times[str(batch_id)] = at
            self._times.move_to_end(str(batch_id))
            while len(self._times) > _REMEMBERED:
                self._times.popitem(last=False)

    def created(self, batch_id: str) -> datetime | None:
        with self._lock:
            return self._times.get(batch_id)


class ResultLines:
    """A recorder for :func:`~cachewise.integrations.streams.tap_sync` / ``tap_async``."""

    def __init__(self, tracker: CallTracker, batch_id: str, started_at: datetime) -> None:
        self.tracker = tracker
        self.batch_id = batch_id
        self.started_at = started_at
        self._pending = b""
        self._closed = False

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        *complete, self._pending = self._pending.split(b"\n")
        for line in complete:
            self.tracker.record_batch_line(self.batch_id, line, self.started_at)

    def close(self, error: BaseException | None = None) -> None:
        """The body ended; a last line without its newline is recorded if it is whole."""
        if self._closed:
            return
        self._closed = True
        last, self._pending = self._pending, b""
        if not last.strip():
            return
        try:
            json.loads(last)
        except (ValueError, RecursionError):  # cut short (the reader stopped, the stream broke)
            return
        self.tracker.record_batch_line(self.batch_id, last, self.started_at)
