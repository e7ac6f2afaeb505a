"""An offline planner that knows the future: the bound each workload's savings are measured against.

The oracle sees the whole workload before the first call. For each call it lays the request out
exactly as the emulator bills it (:func:`cachewise.emulator.layout`: the server's cuts, their
token ends and prefix digests), so it knows, for every prefix of every call, which later calls
contain the same prefix and when. While the workload is replayed it reads the emulator's live
entries (what is cached right now), and for each call it chooses at most four breakpoints:

* a prefix's value per token and TTL is its **refresh chain**: the later calls that contain it,
  in order, for as long as each one comes within the TTL of the one before (a read refreshes
  the entry); a live entry is read now and then follows the same chain; a new one pays the
  write premium (1.25× or 2× input) against 0.9× input saved per read;
* among prefixes whose later uses are the same set (prefixes nest, so the same count), only
  the deepest is a candidate; prefixes below the model's minimum are not;
* a dynamic programme over the candidates picks the chain of breakpoints with the largest
  value, each segment of tokens valued at the breakpoint that ends it, live reads before new
  writes, every 1h before every 5m (docs/api-notes.md §1.4), the caller's own markers kept
  (they take their slots, like cachewise keeps them).

With ``blind_first=True`` the oracle plans the first call of each *family* (calls sharing their
prefix up to the end of ``tools`` or ``system``) without the hour: it may write 5m there or
nothing, but not 1h. That is the **learnable bound**: no planner that learns from the past can
know, the first time it sees a context, that it returns after more than five minutes; everything
after that first call it may learn. It is a second reference, not the goal.

The plan is then sent to the emulator, which bills it by its own rules: the oracle's cost is
a real, achievable bill, not an estimate. It is a bound only in the sense of the best plan this
search finds: the value model ignores that a later call may read a deeper entry and leave a
shallower one unrefreshed, and it plans one call at a time, so an exact optimum could be lower.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..api_rules import MAX_MARKERS, TTL_SECONDS, Ttl
from ..emulator import Emulator, Layout, layout
from ..emulator.positions import Cut
from .script import Call

__all__ = ["Oracle"]

_TTLS: tuple[Ttl, Ttl] = ("1h", "5m")


@dataclass(slots=True)
class _Option:
    """One cut the oracle may mark: where it ends, its path, its value per token per TTL."""

    seq: int
    end: int
    path: str
    values: dict[Ttl, float]
    live: bool
    fixed: bool
    slots: int


def _layout(body: Mapping[str, Any], emulator: Emulator, at: datetime) -> Layout:
    # As the emulator lays it out: the model resolved to its id, the speed it runs at in the salt.
    model = emulator.catalog.resolve(str(body["model"]), at, for_inference=True).id
    return layout({**body, "speed": body.get("speed") or "standard"}, model)


def _mark(body: dict[str, Any], path: str, ttl: Ttl) -> None:
    """Put a ``ttl`` marker on the block at ``path`` (a server cut path) of ``body``, in place."""
    marker = {"type": "ephemeral", "ttl": ttl}
    parts = path.split(".")
    if parts[0] == "tools":
        body["tools"][int(parts[1])]["cache_control"] = marker
    elif parts[0] == "system":
        if len(parts) == 1:
            body["system"] = [{"type": "text", "text": body["system"], "cache_control": marker}]
        else:
            body["system"][int(parts[1])]["cache_control"] = marker
    else:
        message = body["messages"][int(parts[1])]
        if len(parts) == 3:
            message["content"] = [{"type": "text", "text": message["content"], "cache_control": marker}]
        else:
            message["content"][int(parts[3])]["cache_control"] = marker


class Oracle:
    """Plans each call of a known sequence with knowledge of the calls that follow it.

    ``calls`` are the workload's calls in the order they will be sent; :meth:`plan` must be called
    once per call, in that order, with the emulator the calls go to.
    """

    def __init__(self, calls: Sequence[Call], emulator: Emulator, *, blind_first: bool = False) -> None:
        self.emulator = emulator
        self.times = [c.at for c in calls]
        self.requests = [c.request for c in calls]
        start = emulator.now()
        self.layouts = [_layout(c.request, emulator, start) for c in calls]
        self.uses: dict[bytes, list[int]] = {}
        for i, lay in enumerate(self.layouts):
            for cut in lay.cuts:
                uses = self.uses.setdefault(cut.digest, [])
                if not uses or uses[-1] != i:
                    uses.append(i)
        # The first call of each family (its prefix to the end of tools or system, else the model).
        self.blind: set[int] = set()
        if blind_first:
            seen: set[tuple[str, bytes]] = set()
            for i, lay in enumerate(self.layouts):
                heads = [c.digest for c in lay.cuts if c.path.split(".")[0] in ("tools", "system")]
                family = (lay.model, heads[-1] if heads else b"")
                if family not in seen:
                    seen.add(family)
                    self.blind.add(i)
        self.index = 0

    def _chain(self, digest: bytes, i: int, ttl: Ttl) -> int:
        """Reads of an entry for ``digest`` written or read at call ``i``: later uses, each within the TTL."""
        uses = self.uses.get(digest, [])
        prev, reads, limit = self.times[i], 0, TTL_SECONDS[ttl]
        for j in uses[bisect.bisect_right(uses, i) :]:
            if self.times[j] - prev >= limit:
                break
            reads, prev = reads + 1, self.times[j]
        return reads

    def _values(
        self,
        digest: bytes,
        i: int,
        live_ttl: Ttl | None,
        saving: float,
        premium: Mapping[Ttl, float],
        *,
        caller: bool = False,
    ) -> dict[Ttl, float]:
        """Value per token (units of the input price) of a breakpoint on ``digest`` at call ``i``, per TTL."""
        if live_ttl is not None:
            # A read now, then the chain; the marker's own TTL writes nothing (it is the hit).
            return dict.fromkeys(_TTLS, saving * (1 + self._chain(digest, i, live_ttl)))
        ttls: tuple[Ttl, ...] = ("5m",) if i in self.blind and not caller else _TTLS  # callers' markers kept
        return {t: saving * self._chain(digest, i, t) - premium[t] for t in ttls}

    def _options(self, i: int, now: datetime) -> tuple[list[_Option], int]:
        lay = self.layouts[i]
        model = lay.model
        book = self.emulator.book
        minimum = book.min_cache_tokens(model, now).tokens
        rates = book.rates(model, now)
        base = float(rates.input)
        saving = float(rates.input - rates.cache_read) / base
        premium: dict[Ttl, float] = {
            "5m": float(rates.cache_write_5m) / base - 1.0,
            "1h": float(rates.cache_write_1h) / base - 1.0,
        }
        live = {e.digest: e.ttl for e in self.emulator.engine.entries(now) if e.model == model}
        fixed: list[_Option] = []
        # Prefixes nest: two cuts of this call with as many later uses have the same later uses,
        # hence the same value per token; only the deepest of them is worth considering.
        deepest: dict[tuple[int, Ttl | None], Cut] = {}
        for cut in lay.cuts:
            big = cut.eligible and cut.end >= minimum
            if cut.markers:
                ttl = cut.ttl or "5m"
                live_ttl = live.get(cut.digest) if big else None
                values = self._values(cut.digest, i, live_ttl, saving, premium, caller=True) if big else {}
                value = values.get(ttl, 0.0)
                fixed.append(_Option(cut.seq, cut.end, cut.path, {ttl: value}, live_ttl is not None, True, 0))
            elif big:
                uses = self.uses.get(cut.digest, [])
                live_ttl = live.get(cut.digest)
                deepest[(len(uses) - bisect.bisect_right(uses, i), live_ttl)] = cut
        chosen: list[_Option] = []
        for (_, live_ttl), cut in deepest.items():
            values = self._values(cut.digest, i, live_ttl, saving, premium)
            if max(values.values()) > 0:
                chosen.append(_Option(cut.seq, cut.end, cut.path, values, live_ttl is not None, False, 1))
        options = sorted([*fixed, *chosen], key=lambda o: o.seq)
        return options, MAX_MARKERS - lay.marker_count

    def plan(self, body: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """The next call's body with the oracle's markers (``body`` must be that call's request)."""
        i = self.index
        if i >= len(self.requests) or (body is not self.requests[i] and body != self.requests[i]):
            raise ValueError(
                f"oracle: call {i} is not the request it planned for (a script that reads replies?)"
            )
        self.index += 1
        options, free = self._options(i, now)
        chosen = _choose(options, free)
        out = copy.deepcopy(dict(body))
        for option, ttl in chosen:
            if not option.fixed:
                _mark(out, option.path, ttl)
        return out


_State = tuple[int, Ttl, bool]  # (planner slots used, ttl of the last chosen, a write chosen yet)


def _choose(options: Sequence[_Option], free: int) -> list[tuple[_Option, Ttl]]:
    """The best chain: fixed options all kept, at most ``free`` others, 1h before 5m, reads before writes."""
    n = len(options)
    # best[k][state] = (value, (previous index, previous state) or None)
    best: list[dict[_State, tuple[float, tuple[int, _State] | None]]] = [{} for _ in range(n)]
    fixed_at = [k for k, o in enumerate(options) if o.fixed]
    for k, o in enumerate(options):
        for ttl, v in o.values.items():
            wrote = not o.live
            if not any(f < k for f in fixed_at) and o.slots <= free:
                state = (o.slots, ttl, wrote)
                if v * o.end > best[k].get(state, (float("-inf"), None))[0]:
                    best[k][state] = (v * o.end, None)
            for j in range(k - 1, -1, -1):
                for (used, tj, wj), (val, _) in best[j].items():
                    if (tj == "5m" and ttl == "1h") or used + o.slots > free:
                        continue
                    if wj and o.live and not o.fixed:
                        continue  # a live entry after a new write: the write would be the read's shadow
                    state = (used + o.slots, ttl, wj or wrote)
                    total = val + v * (o.end - options[j].end)
                    if total > best[k].get(state, (float("-inf"), None))[0]:
                        best[k][state] = (total, (j, (used, tj, wj)))
                if options[j].fixed:
                    break  # a fixed marker cannot be skipped
    end: tuple[int, _State] | None = None
    end_value = float("-inf") if fixed_at else 0.0
    for k in range(fixed_at[-1] if fixed_at else 0, n):
        for state, (val, _) in best[k].items():
            if val > end_value:
                end_value, end = val, (k, state)
    chosen: list[tuple[_Option, Ttl]] = []
    while end is not None:
        k, state = end
        chosen.append((options[k], state[1]))
        end = best[k][state][1]
    return chosen[::-1]
