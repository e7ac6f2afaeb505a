"""CachePlanner decisions: where, which TTL, when not at all, and what it learns from responses."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from cachewise.errors import TokenCountError
from cachewise.planner import CachePlanner, Plan, effective_minimum
from cachewise.planner.body import copy_body
from cachewise.planner.valuation import family_tokens
from cachewise.pricing import PriceBook
from cachewise.prompt import Prompt, strip_cache_control
from cachewise.tokens import AsyncTokenCounter, LearnedMinimum, TokenCounter, TokenMemo
from tests.fixtures.planning import FakeCount, VirtualClock, fake_tokens
from tests.strategies import words

LONG = words(1500)  # ~3,000 fake tokens: above the 1,024 minimum
SHORT = words(20)


def chat(system: str, turns: int, model: str = "claude-test") -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for i in range(turns):
        messages.append({"role": "user", "content": f"question {i} " + words(30, i)})
        if i < turns - 1:
            messages.append({"role": "assistant", "content": f"answer {i} " + words(40, i)})
    return {"model": model, "max_tokens": 50, "system": system, "messages": messages}


def usage_for(plan: Plan, *, read: int = 0) -> dict[str, Any]:
    """What the API would report: write from the highest read to the last breakpoint."""
    top = max((b.tokens for b in plan.breakpoints), default=0)
    return {
        "input_tokens": 10,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": max(0, top - read),
    }


def paths(plan: Plan) -> list[tuple[str, str]]:
    return [(b.path, b.ttl) for b in plan.added]


def test_first_chat_turn_marks_system_and_tail(make_planner: Callable[..., CachePlanner]) -> None:
    plan = make_planner().plan(chat(LONG, 1))
    assert paths(plan) == [("system.0", "5m"), ("messages.0.content.0", "5m")]
    assert plan.request["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    assert "no history" in plan.breakpoints[0].reason


def test_next_turn_reads_the_previous_tail(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    planner = make_planner()
    first = planner.plan(chat(LONG, 1))
    planner.observe(first, usage_for(first))
    clock.advance(40)
    second = planner.plan(chat(LONG, 2))
    reasons = {b.path: b.reason for b in second.added}
    assert "cached now" in reasons["messages.0.content.0"]
    assert "conversation tail" in reasons["messages.2.content.0"]


def test_below_the_minimum_nothing_is_placed(make_planner: Callable[..., CachePlanner]) -> None:
    plan = make_planner().plan(chat(SHORT, 1))
    assert plan.breakpoints == ()
    assert plan.request == chat(SHORT, 1)
    assert all("below the minimum" in r.reason for r in plan.rejected)
    assert plan.count_calls == 0  # offline bounds decided it


def test_far_above_the_minimum_no_count_is_needed(
    make_planner: Callable[..., CachePlanner], count: FakeCount
) -> None:
    request = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": words(6000),
        "messages": [{"role": "user", "content": words(3000)}],
    }
    plan = make_planner(count_system_end=False).plan(request)
    assert len(plan.added) == 2 and not count.bodies and plan.counts == {}


def test_the_system_end_is_counted_once_for_the_ledger(
    make_planner: Callable[..., CachePlanner], count: FakeCount
) -> None:
    """By default the end of the system prompt is counted after choosing (for what-if replay), memoised
    apart: the choice is the same as without it, later plans do not plan with it (it is not in what
    their memo knew), and the memo answers the next request with that system without a call."""
    request = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": words(6000),
        "messages": [{"role": "user", "content": words(3000)}],
    }
    planner = make_planner()
    plan = planner.plan(request)
    without = make_planner(count_system_end=False, counter=TokenCounter(count, memo=TokenMemo(None)))
    assert paths(plan) == paths(without.plan(request))
    assert list(plan.counts) == [0] and plan.count_calls == 2  # the system + filler, then the filler alone
    assert plan.memoised == frozenset()
    again = planner.plan({**request, "messages": [{"role": "user", "content": words(2000)}]})
    assert again.count_calls == 0 and again.memoised == frozenset() and again.counts == plan.counts


def test_single_use_prefixes_stop_getting_breakpoints(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    planner = make_planner()
    placed = []
    for i in range(30):
        plan = planner.plan(chat(words(1500, seed=i + 1), 1))  # a new system prompt every time
        planner.observe(plan, usage_for(plan))
        placed.append(len(plan.added))
        clock.advance(400)
    assert placed[0] == 2
    assert placed[-5:] == [0, 0, 0, 0, 0]
    assert "no expected reuse" in plan.explain()


def test_sparse_regular_traffic_gets_one_hour(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    planner = make_planner()
    request = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": LONG,
        "messages": [{"role": "user", "content": "status?"}],
    }
    ttls = []
    for gap in (0, 1800, 1500, 2100, 1900):
        clock.advance(gap)
        plan = planner.plan(request)
        planner.observe(plan, usage_for(plan))
        ttls.append({b.path: b.ttl for b in plan.added}.get("system.0"))
    assert ttls[0] == "5m" and ttls[-3:] == ["1h", "1h", "1h"]


def test_frequent_traffic_stays_five_minutes(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    planner = make_planner()
    request = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": LONG,
        "messages": [{"role": "user", "content": "status?"}],
    }
    for _ in range(6):
        plan = planner.plan(request)
        planner.observe(plan, usage_for(plan))
        clock.advance(30)
    assert {b.ttl for b in plan.added} == {"5m"}


def test_caller_markers_are_kept_and_counted(make_planner: Callable[..., CachePlanner]) -> None:
    request = chat(LONG, 3)
    request["messages"][0]["content"] = [
        {"type": "text", "text": "hi " + LONG, "cache_control": {"type": "ephemeral"}}
    ]
    request["cache_control"] = {"type": "ephemeral"}
    original = copy.deepcopy(request)
    plan = make_planner().plan(request)
    assert request == original
    sources = [b.source for b in plan.breakpoints]
    assert sources.count("caller") == 1 and sources.count("automatic") == 1
    assert len(plan.breakpoints) <= 4
    assert plan.request["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert plan.request["cache_control"] == {"type": "ephemeral"}
    # Every 1h before every 5m: a 5m caller marker forces everything after it to 5m.
    assert all(b.ttl == "5m" for b in plan.breakpoints if b.position > plan.breakpoints[0].position)


def test_four_caller_markers_leave_nothing_to_add(make_planner: Callable[..., CachePlanner]) -> None:
    request = chat(LONG, 3)
    for message in request["messages"][:4]:
        message["content"] = [
            {"type": "text", "text": message["content"], "cache_control": {"type": "ephemeral"}}
        ]
    plan = make_planner().plan(request)
    assert plan.added == () and len(plan.breakpoints) == 4
    assert plan.request == request


def test_a_failing_count_places_nothing_it_cannot_justify(
    book: PriceBook, clock: VirtualClock, memo: TokenMemo
) -> None:
    failing = FakeCount(fail=TokenCountError("rate limited", 429))
    planner = CachePlanner(TokenCounter(failing, memo=memo), book=book, clock=clock)
    borderline = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": words(450),
        "messages": [{"role": "user", "content": "go"}],
    }
    plan = planner.plan(borderline)
    assert plan.added == ()
    assert any("could not be counted" in r.reason for r in plan.rejected)
    # A prefix far above the minimum needs no count and is still planned.
    assert len(planner.plan(chat(LONG, 1)).added) == 2


def test_offline_planning_uses_bounds_only(book: PriceBook, clock: VirtualClock) -> None:
    planner = CachePlanner(None, book=book, clock=clock)
    assert len(planner.plan(chat(LONG, 1)).added) == 2
    borderline = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": words(450),
        "messages": [{"role": "user", "content": "go"}],
    }
    assert planner.plan(borderline).added == ()


def test_unknown_model_is_sent_unplanned(make_planner: Callable[..., CachePlanner]) -> None:
    plan = make_planner().plan(chat(LONG, 1, model="claude-nope"))
    assert plan.breakpoints == () and "claude-nope" in plan.notes[0]
    assert plan.request == chat(LONG, 1, model="claude-nope")


def test_agent_turns_adding_more_than_20_positions_get_a_bridge_and_a_read(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    planner = make_planner()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "start " + LONG}]
    request = {"model": "claude-test", "max_tokens": 5, "messages": messages}
    first = planner.plan(request)
    planner.observe(first, usage_for(first))
    for k in range(12):
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"step {k}"},
                    {"type": "tool_use", "id": f"t{k}", "name": "f", "input": {"q": k}},
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"t{k}", "content": words(10, k)}],
            }
        )
    clock.advance(20)
    second = planner.plan(request)
    kinds = " ".join(b.reason for b in second.added)
    assert "cached now" in kinds and "conversation tail" in kinds
    positions = sorted(b.position for b in second.breakpoints)
    assert all(b - a < 20 for a, b in itertools.pairwise(positions))


def test_minimum_is_learned_from_responses(book: PriceBook, clock: VirtualClock, memo: TokenMemo) -> None:
    count = FakeCount()
    planner = CachePlanner(TokenCounter(count, memo=memo), book=book, clock=clock)
    request = {
        "model": "claude-unsure",
        "max_tokens": 5,
        "system": words(1300),
        "messages": [{"role": "user", "content": "hello"}],
    }
    plan = planner.plan(request)  # ~2,600 tokens, above the assumed 2,048
    assert plan.added and any(b.counted for b in plan.added)
    # The server cached nothing: the real minimum is above the largest counted prefix.
    planner.observe(plan, {"input_tokens": 2600})
    tokens, source, uncertain = planner.minimum("claude-unsure")
    top = max(b.tokens for b in plan.added if b.counted)
    assert tokens > top and "learned" in source and uncertain
    clock.advance(60)
    again = planner.plan(request)
    assert again.added == () and again.minimum == tokens
    # A write at N later shows the minimum is at most N.
    memo.learn_minimum("callable", "claude-unsure", at_most=3000)
    assert planner.minimum("claude-unsure")[0] <= 3000


def test_effective_minimum_snaps_to_standard_values() -> None:
    assert effective_minimum(2048, LearnedMinimum()) == (2048, "price table")
    assert effective_minimum(2048, LearnedMinimum(above=2600))[0] == 4096
    assert effective_minimum(2048, LearnedMinimum(at_most=1500))[0] == 1024
    assert effective_minimum(2048, LearnedMinimum(above=1100, at_most=1500))[0] == 1500


def test_virtual_time_plans_exactly_as_live(book: PriceBook) -> None:
    def replay() -> list[list[tuple[str, str]]]:
        clock = VirtualClock()
        planner = CachePlanner(TokenCounter(fake_tokens, memo=TokenMemo(None)), book=book, clock=clock)
        out = []
        for i in range(1, 6):
            plan = planner.plan(chat(LONG, i))
            planner.observe(plan, usage_for(plan))
            out.append(paths(plan))
            clock.advance(45)
        return out

    assert replay() == replay()


def test_explain_names_every_breakpoint_and_rejection(make_planner: Callable[..., CachePlanner]) -> None:
    request = chat(LONG, 1)
    request["tools"] = [{"name": "t", "description": "d", "input_schema": {"type": "object"}}]
    plan = make_planner().plan(request)
    text = plan.explain()
    for b in plan.breakpoints:
        assert b.path in text and b.ttl in text
    assert "tools.0" in text and "below the minimum" in text
    assert "count_tokens call" in text


def test_the_plan_never_raises_outside_tests(
    make_planner: Callable[..., CachePlanner], monkeypatch: Any
) -> None:
    planner = make_planner()
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.setattr(planner, "_candidates", lambda *a: 1 / 0)
    plan = planner.plan(chat(LONG, 1))
    assert plan.breakpoints == () and "ZeroDivisionError" in plan.notes[0]


async def test_aplan_matches_plan(book: PriceBook) -> None:
    async def count(body: dict[str, Any]) -> int:
        return fake_tokens(body)

    sync = CachePlanner(TokenCounter(fake_tokens, memo=TokenMemo(None)), book=book, clock=VirtualClock())
    asynchronous = CachePlanner(
        AsyncTokenCounter(count, memo=TokenMemo(None)), book=book, clock=VirtualClock()
    )
    request = {
        "model": "claude-unsure",
        "max_tokens": 5,
        "system": words(1100),
        "messages": [{"role": "user", "content": "hello"}],
    }
    a, b = sync.plan(request), await asynchronous.aplan(request)
    assert paths(a) == paths(b) and a.count_calls == b.count_calls > 0


def test_seeded_history_counts_like_live_traffic(book: PriceBook) -> None:
    from cachewise.prompt import Prompt

    request = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": LONG,
        "messages": [{"role": "user", "content": "status?"}],
    }
    prompt = Prompt(request)
    clock = VirtualClock()
    rows = [
        {"at": clock.advance(1800), "family": prompt.family, "prefix_hashes": [prompt.family]}
        for _ in range(3)
    ]
    planner = CachePlanner(TokenCounter(fake_tokens, memo=TokenMemo(None)), book=book, clock=clock)
    assert planner.seed(rows) == 3
    clock.advance(1800)
    plan = planner.plan(request)
    assert {b.path: b.ttl for b in plan.added}.get("system.0") == "1h"


def _tool_turns() -> dict[str, Any]:
    """A chat whose last user turn is a run of two large tool results."""
    return {
        "model": "claude-test",
        "max_tokens": 5,
        "system": words(900),
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "a", "name": "f", "input": {}},
                    {"type": "tool_use", "id": "b", "name": "f", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "a", "content": words(600)},
                    {"type": "tool_result", "tool_use_id": "b", "content": words(600, 3)},
                ],
            },
        ],
    }


def test_a_large_tool_result_inside_a_run_is_marked_at_the_end_of_its_run(
    make_planner: Callable[..., CachePlanner],
) -> None:
    """The first tool result is large (a candidate), but a marker on it would sit inside the run.

    Both with runs collapsed (the Claude API) and without, the planner marks only the run's
    last block, so a mid-run reading of the API cannot change what the plan saves.
    """
    for collapse in (True, False):
        plan = make_planner(collapse_runs=collapse).plan(_tool_turns())
        assert [b.path for b in plan.added] == ["system.0", "messages.2.content.1"], collapse
        assert "cache_control" not in plan.request["messages"][2]["content"][0]


def _containers(value: Any) -> set[int]:
    found: set[int] = set()
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list | tuple):
            found.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)
    return found


def _marked_paths_are_copies(request: Mapping[str, Any], plan: Plan) -> None:
    """The caller's request is unchanged, the plan's body is it plus the planner's markers, and no
    container of the caller's lies on the path to a marker the planner added."""
    # the same content (a string system or content turned into one text block hashes the same)
    assert Prompt(plan.request).hashes == Prompt(request).hashes
    assert strip_cache_control(plan.request).keys() == request.keys()
    callers = _containers(request)
    assert id(plan.request) not in callers
    for key in ("tools", "system", "messages"):
        if isinstance(plan.request.get(key), list):
            assert id(plan.request[key]) not in callers  # appending to the caller's list changes no plan
    for b in plan.added:
        node: Any = plan.request
        for part in b.path.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
            assert id(node) not in callers, b.path
        assert node["cache_control"] == {"type": "ephemeral", "ttl": b.ttl}


def test_the_planner_never_changes_the_request_and_copies_what_it_marks(
    make_planner: Callable[..., CachePlanner],
) -> None:
    """Tuples are valid request containers (the SDK takes iterables): they are read as lists, and
    a marked block's containers are copies (new lists, dicts), never the caller's."""
    system = ({"type": "text", "text": LONG},)
    messages = (
        {"role": "user", "content": ({"type": "text", "text": "question " + words(30)},)},
        {"role": "assistant", "content": [{"type": "text", "text": "answer " + words(30)}]},
        {"role": "user", "content": ({"type": "text", "text": "next " + words(30)},)},
    )
    request = {"model": "claude-test", "max_tokens": 5, "system": system, "messages": messages}
    original = copy.deepcopy(request)
    plan = make_planner().plan(request)
    assert plan.added  # markers were placed ...
    assert request == original  # ... on copies only
    _marked_paths_are_copies(request, plan)
    as_lists = copy_body(request)  # the same request with lists: the same positions and hashes
    assert plan.prompt is not None and plan.prompt.hashes == Prompt(as_lists).hashes
    plan.request["messages"][-1]["content"][-1]["text"] = "changed after planning"
    assert request == original  # the plan's marked blocks are its own


async def test_aplan_never_changes_the_request_and_copies_what_it_marks(
    book: PriceBook, clock: VirtualClock, memo: TokenMemo
) -> None:
    async def count(body: dict[str, Any]) -> int:
        return fake_tokens(body)

    planner = CachePlanner(AsyncTokenCounter(count, memo=memo), book=book, clock=clock)
    request = chat(LONG, 3)
    request["messages"] = tuple(request["messages"])
    original = copy.deepcopy(request)
    plan = await planner.aplan(request)
    assert plan.added and request == original
    _marked_paths_are_copies(request, plan)


def _first_sight(book: PriceBook, returns_after: float | None, size: str = LONG) -> str | None:
    """The TTL a new system prompt (``LONG``) gets at its first sight, after three other families
    with a system prompt of ``size`` were each seen again ``returns_after`` seconds later (``None``:
    never seen again)."""
    clock = VirtualClock()
    rows = []
    for k in range(3):
        other = Prompt({"model": "claude-test", "system": f"other {k} " + size, "messages": []})
        family, tokens = other.family, family_tokens(other)
        row = {"family": family, "prefix_hashes": [family], "family_tokens": tokens}
        rows.append({**row, "at": clock.advance(60)})
        if returns_after is not None:
            rows.append({**row, "at": clock.now + timedelta(seconds=returns_after)})
    planner = CachePlanner(TokenCounter(fake_tokens, memo=TokenMemo(None)), book=book, clock=clock)
    planner.seed(rows)
    clock.advance(3 * 3600)  # every window of the history has closed
    request = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": "a new context " + LONG,
        "messages": [{"role": "user", "content": "status?"}],
    }
    return {b.path: b.ttl for b in planner.plan(request).added}.get("system.0")


def test_other_families_that_came_back_after_five_minutes_make_a_new_context_an_hour_write(
    book: PriceBook,
) -> None:
    """The shared-prefix prior is learned across families: where others came back after their 5m
    entry would have lapsed, a context seen for the first time is written for the hour."""
    assert _first_sight(book, returns_after=20 * 60) == "1h"
    assert _first_sight(book, returns_after=60) == "5m"  # back within five minutes: 5m is enough
    assert _first_sight(book, returns_after=None) != "1h"  # one-shot families: no hour's bet


def test_the_shared_prior_of_a_new_context_is_learned_from_contexts_of_its_size(book: PriceBook) -> None:
    """Families far smaller than the new context move its shared prior little: short prompts that
    come back every 20 minutes do not make a large context's first write an hour's."""
    assert _first_sight(book, returns_after=20 * 60, size=words(60)) == "5m"  # ~1/25 the size
    assert _first_sight(book, returns_after=20 * 60, size=words(1200)) == "1h"  # about as large


def test_a_seed_frame_without_a_family_size_seeds_the_size_blind_rate(book: PriceBook) -> None:
    import pandas as pd

    clock = VirtualClock()
    frame = pd.DataFrame(
        [
            {"at": clock.advance(60), "family": "a", "family_tokens": 3000},
            {"at": clock.advance(60), "family": "b", "family_tokens": None},  # NaN in the frame
        ]
    )
    planner = CachePlanner(TokenCounter(fake_tokens, memo=TokenMemo(None)), book=book, clock=clock)
    assert planner.seed(frame) == 2
    assert planner.stats.shared.open_1h == 2  # both families' first arrivals
    assert sum(o.open_1h for o in planner.stats.shared_by_size.values()) == 1  # only the sized one
