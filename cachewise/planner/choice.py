"""Which candidates become breakpoints: the chain of at most 4 with the highest total value.

A dynamic program over the sized, valued candidates in prefix order (fixed ones forced in):
a chain is worth ``Σ (tokens_k − tokens_{k−1}) × value_k``, uses at most the slot budget
(the caller's markers and the automatic one included), and keeps the TTLs in a valid order
(every 1h before every 5m, docs/api-notes.md §1.4). Among equal values a shareable point wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..prompt import Ttl
from .candidates import LOOKBACK, MAX_BREAKPOINTS, Candidate, Status
from .valuation import TTLS

__all__ = ["choose", "ttl_order_ok"]

_FAMILY = frozenset({"end of tools", "end of system"})
_TIE = 1e-9  # prefers a breakpoint at a shareable point when it costs nothing

_State = tuple[int, int, Ttl, bool]  # (pool index, slots used, ttl, a pass)


def ttl_order_ok(cands: Mapping[int, Candidate]) -> bool:
    """Whether the fixed candidates (the caller's markers) keep every 1h before every 5m.

    Every marker counts in block order, also several inside one run (one position): a 5m on
    an earlier block of the run and a 1h on a later one break the order as anywhere else.
    """
    seen_5m = False
    for index in sorted(cands):
        c = cands[index]
        if c.fixed is None:
            continue
        for ttl in c.marker_ttls or [c.fixed_ttl or "5m"]:
            if ttl == "1h" and seen_5m:
                return False
            seen_5m = seen_5m or ttl == "5m"
    return True


def _options(c: Candidate) -> list[Ttl]:
    if c.fixed is not None:
        return [c.fixed_ttl or "5m"]
    return [t for t in TTLS if t in c.values]


def _ends(c: Candidate, ttl: Ttl) -> tuple[Ttl, Ttl]:
    """The TTLs ``c`` shows to what precedes it and to what follows it.

    A planner-placed candidate has one marker. The caller's markers in one run or inside one block
    (a tool result's content and the block itself) may mix TTLs: then a 1h among them needs no 5m
    before ``c``, and a 5m among them allows no 1h after it.
    """
    if c.fixed is None or not c.marker_ttls:
        return ttl, ttl
    ttls = c.marker_ttls
    return ("1h" if "1h" in ttls else "5m"), ("5m" if "5m" in ttls else "1h")


def choose(
    cands: Mapping[int, Candidate],
    budget: int,
    notes: list[str],
    *,
    pause: float = 0.0,
) -> list[Candidate]:
    """The chosen candidates in prefix order; a planner-placed one gets its TTL in ``fixed_ttl``.

    ``budget`` is the number of slots (at most 4); when the fixed candidates alone break the
    limit or the TTL order, only they are returned (and a note says why). ``pause`` is the value
    per token of prefix newly covered by a 1h entry at the end of the chain, beyond the deepest
    live 1h entry (:func:`.valuation.pause_value`): what it saves if the next turn comes after a
    pause.
    """
    fixed_slots = sum(c.slots for c in cands.values())
    if fixed_slots > MAX_BREAKPOINTS or not ttl_order_ok(cands):
        if fixed_slots <= MAX_BREAKPOINTS:
            notes.append("the caller's markers break the TTL order (1h after 5m); nothing added")
        return [c for c in cands.values() if c.fixed is not None]
    pool = sorted(
        (c for c in cands.values() if c.fixed is not None or (c.status == Status.OK and c.values)),
        key=lambda c: c.index,
    )
    tokens: list[int] = []
    running = 0
    for c in pool:
        running = max(running, c.bounds.estimate)
        tokens.append(running)
    m = len(pool)
    neg = -math.inf
    # best[i][(n, ttl)] = (value, previous state)
    best: list[dict[tuple[int, Ttl], tuple[float, _State | None]]] = [{} for _ in range(m)]
    fixed_idx = [i for i, c in enumerate(pool) if c.fixed is not None]
    # Per pool entry, read once: its values and whether it takes the tie-break (a planner-placed,
    # shareable point).
    values = [c.values for c in pool]
    tied = [c.fixed is None and c.shareable for c in pool]

    def gain(i: int, ttl: Ttl, start: int) -> float:
        per = values[i]
        value = (tokens[i] - start) * per.get(ttl, 0.0)
        if tied[i] and per.get(ttl, -1.0) >= 0:
            value += _TIE
        return value

    # A live 5m entry may also be read with no marker of its own (a pass): the next marker finds
    # it within the server's lookback, so it uses no slot and does not bind the TTL order (a 1h
    # tail may follow it). An unmarked entry is refreshed only while it is the deepest hit, so the
    # end of tools or system, which other conversations of the family read, is never passed. Only
    # a family whose conversations were seen to resume after a pause passes (``pause`` > 0): it is
    # for a 1h tail. Passes are states of their own; a pass is never the end of a chain.
    passes: list[dict[tuple[int, Ttl], tuple[float, _State | None]]] = [{} for _ in range(m)]
    indexes = [c.index for c in pool]
    first_fixed = fixed_idx[0] if fixed_idx else m
    for i, c in enumerate(pool):
        need = max(c.slots, 1)
        first_ok = i <= first_fixed  # no fixed candidate before this one
        can_pass = pause > 0 and c.fixed is None and c.live == "5m" and not _FAMILY.intersection(c.kinds)
        best_i, passes_i, index_i = best[i], passes[i], indexes[i]
        if can_pass and first_ok:
            passes_i[(0, "1h")] = (gain(i, "5m", 0), None)
        for option in _options(c):
            head, ttl = _ends(c, option)  # states carry the TTL of their last marker
            passing = can_pass and option == "5m"
            if first_ok and need <= budget:
                best_i[(need, ttl)] = (gain(i, option, 0), None)
            for j in range(i - 1, -1, -1):
                # what this candidate adds after a state at j (the same for every state there)
                step = gain(i, option, tokens[j])
                step_pass = gain(i, "5m", tokens[j]) if passing else 0.0
                for via in (False, True) if index_i - indexes[j] < LOOKBACK else (False,):
                    for (n, tj), (val, _) in (passes[j] if via else best[j]).items():
                        if tj == "5m" and head == "1h":
                            continue
                        total_n = n + need
                        if total_n > budget:
                            continue
                        cand_val = val + step
                        held = best_i.get((total_n, ttl))
                        if cand_val > (neg if held is None else held[0]):
                            best_i[(total_n, ttl)] = (cand_val, (j, n, tj, via))
                        if passing and not via:
                            pass_val = val + step_pass
                            held = passes_i.get((n, tj))
                            if pass_val > (neg if held is None else held[0]):
                                passes_i[(n, tj)] = (pass_val, (j, n, tj, False))
                if pool[j].fixed is not None:
                    break  # a fixed breakpoint cannot be skipped
    end_value, end_state = (0.0, None) if not fixed_idx else (neg, None)
    last_fixed = fixed_idx[-1] if fixed_idx else -1
    covered = max((tokens[i] for i, c in enumerate(pool) if c.live == "1h"), default=0)
    for i in range(max(last_fixed, 0), m):
        for (n, ttl), (val, _) in best[i].items():
            if ttl == "1h" and pause > 0 and pool[i].fixed is None:
                val += pause * max(0, tokens[i] - covered)
            if val > end_value:
                end_value, end_state = val, (i, n, ttl, False)
    chosen: list[Candidate] = []
    state: _State | None = end_state
    while state is not None:
        i, n, ttl, via = state
        if via:
            state = passes[i][(n, ttl)][1]
            continue
        c = pool[i]
        if c.fixed is None:
            c.fixed_ttl = ttl
        chosen.append(c)
        state = best[i][(n, ttl)][1]
    chosen.reverse()
    if fixed_idx and not chosen:
        notes.append("the caller's markers leave no valid placement; nothing added")
        return [c for c in cands.values() if c.fixed is not None]
    return chosen
