"""PrefixHistory.previous: the index answers what a pass over every kept request answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise.diagnose import PrefixHistory, Seen
from cachewise.prompt import Prompt

T0 = datetime(2026, 11, 20, tzinfo=UTC)

# A request: model, system text, and the user/assistant turns (few values, so prefixes repeat).
_requests = st.tuples(
    st.sampled_from(["m1", "m2"]),
    st.sampled_from(["", "system A", "system B"]),
    st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=4),
)


def _seen(request: tuple[str, str, list[str]], i: int) -> Seen:
    model, system, turns = request
    messages = [{"role": "user" if j % 2 == 0 else "assistant", "content": t} for j, t in enumerate(turns)]
    body = {"model": model, "max_tokens": 8, "messages": messages, **({"system": system} if system else {})}
    return Seen.of(Prompt(body), T0 + timedelta(seconds=i))


@settings(max_examples=200, deadline=None)
@given(
    requests=st.lists(st.tuples(_requests, st.booleans()), max_size=30),
    probe=_requests,
    size=st.integers(1, 5),
)
def test_the_index_finds_what_the_scan_finds(
    requests: list[tuple[tuple[str, str, list[str]], bool]], probe: tuple[str, str, list[str]], size: int
) -> None:
    history = PrefixHistory(size)
    for i, (request, answered) in enumerate(requests):
        seen = _seen(request, i)
        assert history.previous(seen) is history._scan(seen, False)
        history.add(seen)
        if answered:
            seen.message_id = f"msg_{i}"
        # once added, a request is never its own previous
        assert history.previous(seen) is history._scan(seen, False)
        assert history.previous(seen) is not seen
        named = history.previous(seen, with_message_id=True)
        assert named is None or (named.message_id is not None and named is not seen)
    current = _seen(probe, len(requests))
    assert history.previous(current) is history._scan(current, False)


def test_the_longest_shared_prefix_wins_and_the_newest_on_a_tie() -> None:
    history = PrefixHistory()
    a1 = _seen(("m1", "system A", ["x", "y"]), 0)
    b = _seen(("m1", "system B", ["x"]), 1)
    a2 = _seen(("m1", "system A", ["x", "z"]), 2)
    for seen in (a1, b, a2):
        history.add(seen)
    assert history.previous(_seen(("m1", "system A", ["x", "y", "z"]), 3)) is a1  # shares x, y
    assert history.previous(_seen(("m1", "system A", ["x", "w"]), 3)) is a2  # a tie: the newest
    assert history.previous(_seen(("m2", "system A", ["x"]), 3)) is a2  # nothing shared: the newest
    assert PrefixHistory().previous(a1) is None


def test_a_request_that_left_the_history_is_not_found() -> None:
    history = PrefixHistory(2)
    old = _seen(("m1", "system A", ["x"]), 0)
    history.add(old)
    history.add(_seen(("m2", "system B", ["y"]), 1))
    history.add(last := _seen(("m2", "system B", ["z"]), 2))
    # ``old`` has left: nothing kept shares a position with the probe, so the newest is answered
    assert history.previous(_seen(("m1", "system A", ["x"]), 3)) is last
    assert not any(entry[1] is old for entry in history._newest.values())
