"""What ``cachewise whatif --since`` replays, per call and without prompt text (docs/why.md).

``{"tokens": <the prompt's tokens>, "points": [...], "caller": [...], "auto": <TTL or null>}`` with one
point per cache position:
``[prefix hash, cumulative tokens, level, marker TTL, counted, block type, plannable, cumulative
bytes, cumulative text bytes]`` (the prompt's tokens can exceed the last position's: the request's
closing overhead is never cached). Rows written before the last four fields were added have five.
The hash is the first 16 hex digits of the position's prefix hash (:mod:`cachewise.prompt`), the
TTL is ``"5m"``/``"1h"`` where the call carried a marker the API applied (``None`` elsewhere),
and ``counted`` is 1 where the tokens are known exactly, 0 where they are estimated. The block type
(``text``, ``tool``, ``document``, ``tool_result``...), whether a marker may go there (1/0) and the
canonical and non-whitespace byte sizes of the prefix are what the planner reads of a request
besides its hashes (:mod:`cachewise.whatif.planned` replays it from them). ``caller`` lists the
markers the caller wrote, ``[position, TTL]`` in block order (the sent markers less those the
planner added), and ``auto`` the top-level ``cache_control``'s TTL.

Exact sizes come from the billed usage: the whole prompt, the extent of what
was cached (read + written: the last marker), the 1h part (the last 1h marker), what was read (the
position whose earlier count equals it), and from earlier calls sharing a prefix hash (the same
prefix has the same count). Between exact points the tokens are interpolated on the canonical
bytes of the prefix; an unmarked last position is the prompt's tokens less the closing overhead
last seen (``Sizes.tail``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from ..api_rules import LOOKBACK, TTL_SECONDS, Ttl
from ..usage import Usage
from .history import Seen

__all__ = ["HASH_DIGITS", "Point", "Replay", "Sizes", "points"]

HASH_DIGITS = 16

Point = tuple[str, int, str, str | None, int, str, int, int, int]
Replay = dict[str, Any]


class Sizes:
    """Counted prefix sizes seen so far (prefix hash -> tokens), the newest ``size`` kept."""

    def __init__(self, size: int = 8192) -> None:
        self._known: OrderedDict[str, int] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.tail: dict[str, int] = {}  # per model: prompt tokens past the last position
        # prefix hash -> (expiry, TTL) of the cache entries this tracker's calls wrote
        self._live: OrderedDict[str, tuple[datetime, Ttl]] = OrderedDict()

    def alive(self, digest: str, at: datetime) -> bool:
        with self._lock:
            entry = self._live.get(digest)
        return entry is not None and at < entry[0]

    def wrote(self, digest: str, until: datetime, ttl: Ttl) -> None:
        with self._lock:
            old = self._live.get(digest)
            if old is None or old[0] < until:
                self._live[digest] = (until, ttl)
            self._live.move_to_end(digest)
            while len(self._live) > self._size:
                self._live.popitem(last=False)

    def refresh(self, digest: str, at: datetime) -> None:
        with self._lock:
            old = self._live.get(digest)
        if old is not None and at < old[0]:
            self.wrote(digest, at + timedelta(seconds=TTL_SECONDS[old[1]]), old[1])

    def get(self, digest: str) -> int | None:
        with self._lock:
            return self._known.get(digest)

    def learn(self, digest: str, tokens: int) -> None:
        with self._lock:
            self._known[digest] = tokens
            self._known.move_to_end(digest)
            while len(self._known) > self._size:
                self._known.popitem(last=False)


def _read_at(seen: Seen, anchors: dict[int, int], sizes: Sizes, read: int, last_marker: int) -> int | None:
    """The position the call read up to: a known count equal to ``read``, else a known prefix."""
    best: int | None = None
    for i in range(last_marker, -1, -1):
        known = sizes.get(seen.hashes[i])
        if known == read:
            return i
        if known is not None and best is None:
            best = i
    return best


def _caller(seen: Seen, added: Collection[int]) -> list[list[Any]]:
    """The caller's markers: those sent, less the ones the planner put at ``added`` positions."""
    return [[at, ttl] for at, ttl in seen.marker_list if at not in added]


def _hit(seen: Seen, sizes: Sizes, marked: list[int]) -> int | None:
    """Where the call read, as the server looks it up among the entries earlier calls wrote.

    For each marker, back at most :data:`~cachewise.api_rules.LOOKBACK` positions to the first
    entry still alive at the call's start; the deepest such hit. ``None`` when none is known.
    """
    hit: int | None = None
    for m in marked:
        for q in range(m, max(m - LOOKBACK, -1), -1):
            if sizes.alive(seen.hashes[q], seen.started_at):
                hit = q if hit is None else max(hit, q)
                break
    return hit


def _fits(anchors: Mapping[int, int], at: int, tokens: int) -> bool:
    """Whether ``tokens`` at position ``at`` keeps the exact sizes in prefix order."""
    return all(v <= tokens for i, v in anchors.items() if i < at) and all(
        v >= tokens for i, v in anchors.items() if i > at
    )


def _remember(
    seen: Seen, sizes: Sizes, out: list[Point], ttls: Mapping[int, Ttl], hit: int | None, minimum: int
) -> None:
    """What the call left in the cache: the hit refreshed, an entry at each marker after it."""
    start = seen.started_at
    if hit is not None:
        sizes.refresh(seen.hashes[hit], start)
    for i, ttl in ttls.items():
        if out[i][1] < minimum:
            continue  # below the model's minimum: not cached
        if hit is None or i > hit:
            sizes.wrote(seen.hashes[i], start + timedelta(seconds=TTL_SECONDS[ttl]), ttl)
        elif i < hit:
            sizes.refresh(seen.hashes[i], start)


def points(
    seen: Seen,
    usage: Usage,
    sizes: Sizes,
    counts: Mapping[int, int] | None = None,
    added: Collection[int] = (),
    minimum: int = 0,
    memoised: Collection[int] = (),
) -> Replay:
    """The replay of the call ``seen`` billed as ``usage``; learns its exact sizes.

    ``counts``: prefix sizes counted before sending (the planner's count_tokens answers and memo
    hits), by position, ``None`` when the call was not planned; ``memoised``: those of ``counts``
    the planner's memo knew before it planned; ``added``: the positions the planner marked (not the
    caller's markers); ``minimum``: the model's minimum cacheable prompt (the watch keeps which
    entries its calls wrote, to find where a later call read).
    """
    n = len(seen.hashes)
    shape: Replay = {"caller": _caller(seen, frozenset(added)), "auto": seen.auto_ttl}
    if counts is not None:
        held = frozenset(memoised)
        shape["counts"] = [[i, counts[i], int(i in held)] for i in sorted(counts) if 0 <= i < n]
    if n == 0:
        return {"tokens": usage.prompt_tokens, "points": [], **shape}
    total = usage.prompt_tokens
    read, written = usage.cache_read_input_tokens, usage.cache_creation_input_tokens
    ttls = dict(seen.marker_ttls)
    anchors: dict[int, int] = {}
    for i, digest in enumerate(seen.hashes):
        known = sizes.get(digest)
        if known is not None and known <= total:
            anchors[i] = known
    for i, tokens in (counts or {}).items():
        if 0 <= i < n and tokens <= total:
            anchors[i] = tokens
    marked = sorted(ttls)
    hit: int | None = None
    if marked and (read or written):
        last = marked[-1]
        anchors[last] = read + written
        hour = [i for i in marked if ttls[i] == "1h"]
        if hour and usage.ephemeral_1h_input_tokens and usage.ephemeral_5m_input_tokens:
            anchors[hour[-1]] = read + usage.ephemeral_1h_input_tokens
        if read and written:
            hit = _hit(seen, sizes, marked)
            exact = next((i for i in range(last - 1, -1, -1) if sizes.get(seen.hashes[i]) == read), None)
            if exact is not None:
                hit = exact
            elif hit is None or hit >= last or not _fits(anchors, hit, read):
                hit = _read_at(seen, anchors, sizes, read, last - 1)
            if hit is not None:
                anchors[hit] = read
        elif read:
            hit = last
    elif marked:
        ttls = {}  # marked but nothing read or written: every marker was below the model's minimum
    last_counted = n - 1 in anchors
    if not last_counted:
        anchors[n - 1] = max(total - sizes.tail.get(seen.model, 0), max(anchors.values(), default=0))
    cum = seen.cum_bytes if len(seen.cum_bytes) == n else tuple(range(1, n + 1))
    text = seen.cum_text if len(seen.cum_text) == n else cum
    kinds = seen.kinds if len(seen.kinds) == n else ("text",) * n
    plannable = seen.plannable if len(seen.plannable) == n else (True,) * n
    out: list[Point] = []
    prev_tokens, prev_bytes = 0, 0
    ordered = sorted(anchors)
    for i in range(n):
        if i in anchors:
            tokens = max(anchors[i], prev_tokens)
        else:
            nxt = next(j for j in ordered if j > i)
            span = cum[nxt] - prev_bytes
            share = (cum[i] - prev_bytes) / span if span > 0 else 1.0
            tokens = prev_tokens + round((anchors[nxt] - prev_tokens) * min(max(share, 0.0), 1.0))
            tokens = min(max(tokens, prev_tokens), anchors[nxt])
        counted = i in anchors and (i < n - 1 or last_counted)
        out.append(
            (
                seen.hashes[i][:HASH_DIGITS],
                tokens,
                seen.levels[i],
                ttls.get(i),
                int(counted),
                kinds[i],
                int(plannable[i]),
                cum[i],
                text[i],
            )
        )
        if i in anchors:
            prev_tokens, prev_bytes = tokens, cum[i]
        if counted:
            sizes.learn(seen.hashes[i], tokens)
    if last_counted:
        sizes.tail[seen.model] = total - out[-1][1]
    if read or written:
        _remember(seen, sizes, out, ttls, hit, minimum)
    return {"tokens": total, "points": [list(p) for p in out], **shape}
