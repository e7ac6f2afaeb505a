"""The planner marks only the end of a run of tool_use / tool_result blocks (hypothesis).

A run is one cache position; what a marker on a block inside a run does is read two ways
(docs/planner.md, "How a request is read"). A marker on the run's last block means the
same under both, so the planner's savings do not depend on the reading the API uses.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachewise.planner import CachePlanner
from cachewise.pricing import PriceBook
from cachewise.tokens import TokenCounter, TokenMemo
from tests.fixtures.planning import VirtualClock, fake_tokens
from tests.strategies import words

MARK = {"type": "ephemeral"}


@st.composite
def agent_request(draw: st.DrawFn) -> dict[str, Any]:
    """An agent loop: each turn a run of 1–4 tool_use blocks answered by a run of tool_result blocks."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": words(draw(st.sampled_from([5, 900])))}]
    for turn in range(draw(st.integers(1, 4))):
        ids = [f"toolu_{turn}_{k}" for k in range(draw(st.integers(1, 4)))]
        calls: list[dict[str, Any]] = [{"type": "text", "text": "calling"}] if draw(st.booleans()) else []
        calls += [
            {"type": "tool_use", "id": t, "name": "f", "input": {"q": words(3, k)}} for k, t in enumerate(ids)
        ]
        messages.append({"role": "assistant", "content": calls})
        results: list[dict[str, Any]] = [
            {
                "type": "tool_result",
                "tool_use_id": t,
                "content": words(draw(st.sampled_from([5, 300, 700])), k),
            }
            for k, t in enumerate(ids)
        ]
        if draw(st.booleans()):
            results.append({"type": "text", "text": words(draw(st.sampled_from([3, 400])))})
        messages.append({"role": "user", "content": results})
    body: dict[str, Any] = {"model": "claude-test", "max_tokens": 10, "messages": messages}
    if draw(st.booleans()):
        body["system"] = words(draw(st.sampled_from([10, 900])))
    if draw(st.booleans()):  # a caller's marker inside a run: kept where it is, never copied
        last = messages[-1]["content"]
        last[0]["cache_control"] = dict(MARK)
    return body


@st.composite
def history(draw: st.DrawFn) -> list[tuple[float, bool]]:
    """Earlier calls before the planned one: (seconds before the next, whether the server cached)."""
    return draw(st.lists(st.tuples(st.sampled_from([5.0, 90.0, 1500.0, 7200.0]), st.booleans()), max_size=4))


def _inside_run(body: dict[str, Any], path: str) -> bool:
    """Whether ``path`` names a tool_use/tool_result block followed by another of its type (mid-run)."""
    parts = path.split(".")
    if len(parts) != 4 or parts[0] != "messages" or parts[2] != "content":
        return False
    content = body["messages"][int(parts[1])]["content"]
    k = int(parts[3])
    kind = content[k].get("type")
    return (
        kind in ("tool_use", "tool_result")
        and k + 1 < len(content)
        and isinstance(content[k + 1], dict)
        and content[k + 1].get("type") == kind
    )


def _marked(body: dict[str, Any]) -> set[str]:
    return {
        f"messages.{m}.content.{k}"
        for m, message in enumerate(body["messages"])
        if isinstance(message["content"], list)
        for k, block in enumerate(message["content"])
        if "cache_control" in block
    }


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=agent_request(), past=history(), collapse=st.booleans())
def test_no_planned_marker_lies_inside_a_run(
    body: dict[str, Any], past: list[tuple[float, bool]], collapse: bool, table_book: PriceBook
) -> None:
    """No marker the planner adds sits on a non-final block of a run, runs collapsed or not."""
    clock = VirtualClock()
    planner = CachePlanner(
        TokenCounter(fake_tokens, memo=TokenMemo(None)),
        book=table_book,
        clock=clock,
        collapse_runs=collapse,
    )
    for gap, cached in past:
        earlier = planner.plan(body)
        top = max((b.tokens or 0 for b in earlier.breakpoints), default=0)
        planner.observe(earlier, {"input_tokens": 5, "cache_creation_input_tokens": top if cached else 0})
        clock.advance(gap)
    plan = planner.plan(body)
    for bp in plan.added:
        assert not _inside_run(plan.request, bp.path), bp.path
    # And in the body itself: every marker the planner added sits on the end of its run.
    for path in _marked(plan.request) - _marked(body):
        assert not _inside_run(plan.request, path), path


def test_caller_markers_out_of_ttl_order_inside_one_run_get_nothing_added(
    make_planner: Any,
) -> None:
    """A 5m marker on an earlier block of a run and a 1h on a later one break the TTL order (the
    API refuses the request), although the run is one position: the planner adds nothing.
    Found by tests/planner/test_properties.py::test_every_plan_is_valid."""
    result = words(300)
    body = {
        "model": "claude-test",
        "max_tokens": 10,
        "tools": [{"name": "t", "description": words(900), "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "a", "name": "t", "input": {}},
                    {"type": "tool_use", "id": "b", "name": "t", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "a",
                        "content": [{"type": "text", "text": result, "cache_control": {"type": "ephemeral"}}],
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "b",
                        "content": result,
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    },
                    {"type": "text", "text": words(900, 3)},
                ],
            },
        ],
    }
    plan = make_planner().plan(body)
    assert plan.request == body
    assert plan.added == ()
    assert any("TTL order" in note for note in plan.notes)
