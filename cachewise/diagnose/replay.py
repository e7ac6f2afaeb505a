"""What ``cachewise whatif --since`` replays, per call and without prompt text (docs/why.md).

``{"tokens": <the prompt's tokens>, "points": [...]}`` with one point per cache position:
``[prefix hash, cumulative tokens, level, marker TTL, counted]`` (the prompt's tokens can exceed the
last position's: the request's closing overhead is never cached).
The hash is the first 16 hex digits of the position's prefix hash (:mod:`cachewise.prompt`), the
TTL is ``"5m"``/``"1h"`` where the call carried a marker the API applied (``None`` elsewhere),
and ``counted`` is 1 where the tokens are known exactly, 0 where they are estimated.

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
from collections.abc import Mapping
from typing import Any

from ..usage import Usage
from .history import Seen

__all__ = ["HASH_DIGITS", "Point", "Replay", "Sizes", "points"]

HASH_DIGITS = 16

Point = tuple[str, int, str, str | None, int]
Replay = dict[str, Any]


class Sizes:
    """Counted prefix sizes seen so far (prefix hash -> tokens), the newest ``size`` kept."""

    def __init__(self, size: int = 8192) -> None:
        self._known: OrderedDict[str, int] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.tail: dict[str, int] = {}  # per model: prompt tokens past the last position

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


def points(seen: Seen, usage: Usage, sizes: Sizes, counts: Mapping[int, int] | None = None) -> Replay:
    """The replay of the call ``seen`` billed as ``usage``; learns its exact sizes.

    ``counts``: prefix sizes counted before sending (the planner's count_tokens), by position.
    """
    n = len(seen.hashes)
    if n == 0:
        return {"tokens": usage.prompt_tokens, "points": []}
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
    if marked and (read or written):
        last = marked[-1]
        anchors[last] = read + written
        hour = [i for i in marked if ttls[i] == "1h"]
        if hour and usage.ephemeral_1h_input_tokens and usage.ephemeral_5m_input_tokens:
            anchors[hour[-1]] = read + usage.ephemeral_1h_input_tokens
        if read and written:
            at = _read_at(seen, anchors, sizes, read, last - 1)
            if at is not None:
                anchors[at] = read
    elif marked:
        ttls = {}  # marked but nothing read or written: every marker was below the model's minimum
    last_counted = n - 1 in anchors
    if not last_counted:
        anchors[n - 1] = max(total - sizes.tail.get(seen.model, 0), max(anchors.values(), default=0))
    cum = seen.cum_bytes if len(seen.cum_bytes) == n else tuple(range(1, n + 1))
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
        out.append((seen.hashes[i][:HASH_DIGITS], tokens, seen.levels[i], ttls.get(i), int(counted)))
        if i in anchors:
            prev_tokens, prev_bytes = tokens, cum[i]
        if counted:
            sizes.learn(seen.hashes[i], tokens)
    if last_counted:
        sizes.tail[seen.model] = total - out[-1][1]
    return {"tokens": total, "points": [list(p) for p in out]}
