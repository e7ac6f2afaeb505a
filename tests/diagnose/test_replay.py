"""Replay points: counted sizes from the billed usage, the planner and earlier calls; the rest estimated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cachewise.diagnose import Seen, Sizes, points
from cachewise.prompt import Prompt
from cachewise.usage import Usage

T0 = datetime(2026, 4, 1, 9, tzinfo=UTC)


def _body(system_ttl: str | None = "5m", turn_ttl: str | None = "5m") -> dict[str, Any]:
    system: dict[str, Any] = {"type": "text", "text": "The handbook. " * 400}
    turn: dict[str, Any] = {"type": "text", "text": "Where do pallets go?"}
    if system_ttl:
        system["cache_control"] = {"type": "ephemeral", "ttl": system_ttl}
    if turn_ttl:
        turn["cache_control"] = {"type": "ephemeral"}
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 5,
        "tools": [{"name": "look", "description": "Look it up.", "input_schema": {"type": "object"}}],
        "system": [system],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}, turn]}],
    }


def _seen(body: dict[str, Any]) -> Seen:
    return Seen.of(Prompt(body), T0)


def test_the_billed_usage_counts_the_last_marker_and_the_whole_prompt() -> None:
    sizes = Sizes()
    out = points(_seen(_body()), Usage(input_tokens=3, ephemeral_5m_input_tokens=1500), sizes)
    assert out["tokens"] == 1503
    rows = out["points"]
    assert [p[2] for p in rows] == ["tools", "system", "messages", "messages"]
    assert [p[3] for p in rows] == [None, "5m", None, "5m"]
    assert rows[-1][1] == 1500 and rows[-1][4] == 1
    assert [p[4] for p in rows[:-1]] == [0, 0, 0]  # estimated, and flagged
    sizes_seen = [p[1] for p in rows]
    assert sizes_seen == sorted(sizes_seen) and 0 < rows[0][1] < rows[1][1] < 1500
    assert all(len(p[0]) == 16 for p in rows)


def test_a_1h_and_5m_split_counts_the_1h_marker() -> None:
    out = points(
        _seen(_body(system_ttl="1h")),
        Usage(input_tokens=3, ephemeral_1h_input_tokens=1400, ephemeral_5m_input_tokens=100),
        Sizes(),
    )
    assert out["points"][1][1:5] == [1400, "system", "1h", 1]


def test_an_earlier_count_of_the_same_prefix_is_reused() -> None:
    sizes = Sizes()
    points(
        _seen(_body(system_ttl="1h")),
        Usage(ephemeral_1h_input_tokens=1400, ephemeral_5m_input_tokens=100, input_tokens=3),
        sizes,
    )
    # the same prompt, no marker at all: its sizes are still known
    out = points(_seen(_body(system_ttl=None, turn_ttl=None)), Usage(input_tokens=1503), sizes)
    assert out["points"][1][1] == 1400 and out["points"][1][4] == 1
    assert out["points"][-1][1] == 1500 and out["points"][-1][4] == 1
    # a new last turn, unmarked: the prompt less the closing overhead seen before, estimated
    other = _body(system_ttl=None, turn_ttl=None)
    other["messages"][0]["content"][1]["text"] = "Where do boxes go?"
    out = points(_seen(other), Usage(input_tokens=1502), sizes)
    assert out["points"][-1][1] == 1499 and out["points"][-1][4] == 0


def test_a_read_lands_where_an_earlier_call_counted_that_size() -> None:
    sizes = Sizes()
    points(
        _seen(_body(system_ttl="1h")),
        Usage(ephemeral_1h_input_tokens=1400, ephemeral_5m_input_tokens=100),
        sizes,
    )
    longer = _body()
    longer["messages"][0]["content"].append(
        {"type": "text", "text": "And boxes?", "cache_control": {"type": "ephemeral"}}
    )
    del longer["messages"][0]["content"][1]["cache_control"]
    out = points(_seen(longer), Usage(cache_read_input_tokens=1400, ephemeral_5m_input_tokens=130), sizes)
    assert out["points"][1][1] == 1400 and out["points"][-1][1] == 1530


def test_the_planner_counts_are_taken() -> None:
    out = points(
        _seen(_body()), Usage(ephemeral_5m_input_tokens=1500, input_tokens=3), Sizes(), {0: 40, 1: 1380}
    )
    assert [p[1] for p in out["points"][:2]] == [40, 1380] and [p[4] for p in out["points"][:2]] == [1, 1]


def test_markers_that_cached_nothing_were_below_the_minimum() -> None:
    out = points(_seen(_body()), Usage(input_tokens=900), Sizes())
    assert [p[3] for p in out["points"]] == [None, None, None, None]
    assert out["tokens"] == 900 and out["points"][-1][1] <= 900


def test_a_read_at_an_uncounted_marker_an_earlier_call_wrote_is_counted() -> None:
    """Call 1 writes all 1500 tokens at once (its system boundary is estimated); call 2 reads there."""
    sizes = Sizes()
    first = points(_seen(_body()), Usage(input_tokens=3, ephemeral_5m_input_tokens=1500), sizes)
    assert first["points"][1][4] == 0  # the system boundary: estimated
    later = Seen.of(Prompt(_body(turn_ttl=None) | {"messages": [_long_turn()]}), T0 + timedelta(seconds=60))
    out = points(
        later,
        Usage(input_tokens=3, cache_read_input_tokens=1420, ephemeral_5m_input_tokens=400),
        sizes,
    )
    assert out["points"][1][1:5] == [1420, "system", "5m", 1]


def test_an_expired_entry_is_not_where_a_call_read() -> None:
    sizes = Sizes()
    points(_seen(_body()), Usage(input_tokens=3, ephemeral_5m_input_tokens=1500), sizes)
    later = Seen.of(Prompt(_body(turn_ttl=None) | {"messages": [_long_turn()]}), T0 + timedelta(minutes=6))
    out = points(
        later, Usage(input_tokens=3, cache_read_input_tokens=1420, ephemeral_5m_input_tokens=400), sizes
    )
    assert out["points"][1][4] == 0  # the system entry had expired: the read is not placed there


def test_the_caller_markers_exclude_the_planner_ones() -> None:
    out = points(_seen(_body()), Usage(input_tokens=3, ephemeral_5m_input_tokens=1500), Sizes(), added=[3])
    assert out["caller"] == [[1, "5m"]] and out["auto"] is None
    auto = points(
        _seen({**_body(None, None), "cache_control": {"type": "ephemeral", "ttl": "1h"}}), Usage(), Sizes()
    )
    assert auto["caller"] == [] and auto["auto"] == "1h"


def _long_turn() -> dict[str, Any]:
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": "A longer question. " * 80, "cache_control": {"type": "ephemeral"}}
        ],
    }


def test_the_planners_counts_are_kept_with_what_its_memo_knew() -> None:
    """``counts``: every size the planner knew (the count_tokens answer, not the cached size) and which
    its memo held before planning; an unplanned call has no such key."""
    seen = _seen(_body())
    usage = Usage(input_tokens=3, ephemeral_5m_input_tokens=1500)
    out = points(seen, usage, Sizes(), {1: 1400, 3: 1503}, memoised={1})
    assert out["counts"] == [[1, 1400, 1], [3, 1503, 0]]
    assert out["points"][1][1:5] == [1400, "system", "5m", 1]  # a count is an exact size of the cache
    assert out["points"][3][1] == 1500  # where the usage says what was cached, that is the size kept
    assert "counts" not in points(seen, usage, Sizes())
    assert points(seen, usage, Sizes(), {})["counts"] == []
