"""The request as cache positions, and prefix hashes that change exactly when the API's prefix does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cachewise.prompt import Prompt, canonical_json

TOOL = {"name": "lookup", "description": "find a thing", "input_schema": {"type": "object", "properties": {}}}


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "claude-test",
        "max_tokens": 10,
        "tools": [TOOL, {**TOOL, "name": "other"}],
        "system": [{"type": "text", "text": "rules"}, {"type": "text", "text": "more rules"}],
        "messages": [
            {"role": "user", "content": "hello"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"b": 1, "a": 2}},
                    {"type": "tool_use", "id": "t2", "name": "lookup", "input": {"a": 3}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "r1"}]},
                    {"type": "tool_result", "tool_use_id": "t2", "content": "r2"},
                    {"type": "text", "text": ""},
                ],
            },
        ],
    }
    base.update(over)
    return base


def test_positions_follow_tools_system_messages_with_runs_collapsed() -> None:
    prompt = Prompt(body())
    paths = [p.path for p in prompt.positions]
    assert paths == [
        "tools.0",
        "tools.1",
        "system.0",
        "system.1",
        "messages.0.content",
        "messages.1.content.0",
        "messages.1.content.1",
        "messages.1.content.3",
        "messages.2.content.1",
        "messages.2.content.2",
    ]
    assert prompt.level_ends == {"tools": 1, "system": 3, "messages": 9}


def test_runs_are_separate_positions_off_the_claude_api() -> None:
    prompt = Prompt(body(), collapse_runs=False)
    assert len(prompt) == 12
    inside = [p.path for p in prompt.positions if p.inside_run]
    assert inside == ["messages.1.content.2", "messages.2.content.0"]
    assert not any(p.plannable for p in prompt.positions if p.inside_run)
    assert not any(p.inside_run for p in Prompt(body()).positions)


def test_markable_rules() -> None:
    prompt = Prompt(body())
    why = {p.path: p.why_not for p in prompt.positions if not p.markable}
    assert set(why) == {"messages.1.content.0", "messages.2.content.2"}
    assert "thinking" in str(why["messages.1.content.0"])
    assert "empty" in str(why["messages.2.content.2"])


def test_hash_ignores_cache_control_and_envelope_key_order() -> None:
    plain = Prompt(body())
    marked = body()
    marked["system"][1]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    marked["messages"][2]["content"][0]["content"][0]["cache_control"] = {"type": "ephemeral"}
    reordered = body()
    reordered["system"] = [{"text": "rules", "type": "text"}, {"text": "more rules", "type": "text"}]
    for other in (Prompt(marked), Prompt(reordered)):
        assert [p.prefix_hash for p in other.positions] == [p.prefix_hash for p in plain.positions]


def test_hash_keeps_key_order_inside_tool_use_input() -> None:
    plain = Prompt(body())
    swapped = body()
    swapped["messages"][1]["content"][2]["input"] = {"a": 2, "b": 1}
    other = Prompt(swapped)
    assert other.positions[6].prefix_hash == plain.positions[6].prefix_hash
    assert other.positions[7].prefix_hash != plain.positions[7].prefix_hash


@pytest.mark.parametrize(
    ("change", "first_changed"),
    [
        ({"model": "claude-other"}, 0),
        ({"tools": [TOOL, {**TOOL, "name": "renamed"}]}, 1),
        ({"speed": "fast"}, 2),
        ({"tool_choice": {"type": "any"}}, 4),
        ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}, 4),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, 4),
        ({"output_config": {"effort": "low"}}, 4),
    ],
)
def test_each_setting_invalidates_its_level_and_later(change: dict[str, Any], first_changed: int) -> None:
    plain = Prompt(body())
    other = Prompt(body(**change))
    same = [a.prefix_hash == b.prefix_hash for a, b in zip(plain.positions, other.positions, strict=True)]
    assert same == [i < first_changed for i in range(len(same))]


def test_defaults_equal_omission() -> None:
    plain = Prompt(body())
    explicit = Prompt(body(speed="standard", tool_choice={"type": "auto"}, output_config={"effort": "high"}))
    assert [p.prefix_hash for p in plain.positions] == [p.prefix_hash for p in explicit.positions]


def test_an_image_anywhere_invalidates_messages_only() -> None:
    plain = Prompt(body())
    with_image = body()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    with_image["messages"].append({"role": "assistant", "content": "ok"})
    with_image["messages"].append({"role": "user", "content": [image]})
    other = Prompt(with_image)
    assert other.positions[3].prefix_hash == plain.positions[3].prefix_hash
    assert other.positions[4].prefix_hash != plain.positions[4].prefix_hash


def test_markers_are_found_with_their_positions_and_ttls() -> None:
    marked = body(cache_control={"type": "ephemeral", "ttl": "1h"})
    marked["tools"][1] = {**TOOL, "name": "other", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    marked["messages"][1]["content"][2]["cache_control"] = {"type": "ephemeral"}
    marked["messages"][2]["content"][0]["content"][0]["cache_control"] = {"type": "ephemeral"}
    prompt = Prompt(marked)
    found = [(m.path, m.position, m.ttl, m.nested) for m in prompt.markers]
    assert found == [
        ("tools.1", 1, "1h", False),
        ("messages.1.content.2", 7, "5m", False),
        ("messages.2.content.0.content.0", 8, "5m", True),
    ]
    assert prompt.auto == "1h"


def test_truncated_bodies_are_valid_requests() -> None:
    prompt = Prompt(
        body(tools=[TOOL, {"type": "web_search_20250305", "name": "web_search"}], tool_choice={"type": "any"})
    )
    tools_body, filler = prompt.truncated(0)
    assert filler and tools_body["messages"] == [{"role": "user", "content": "."}]
    assert tools_body["tools"] == [TOOL] and "system" not in tools_body and "tool_choice" not in tools_body
    system_body, filler = prompt.truncated(2)
    assert filler and system_body["system"] == [{"type": "text", "text": "rules"}]
    # Ends on an assistant turn with tool_use: tool_results are supplied for each id.
    assert prompt.truncated(6)[0]["messages"][-1] == {"role": "user", "content": "."}
    dangling, filler = prompt.truncated(7)
    assert filler and dangling["messages"][-1]["content"][0]["tool_use_id"] == "t1"
    assert [b["id"] for b in dangling["messages"][-2]["content"] if b["type"] == "tool_use"] == ["t1", "t2"]
    # Ends on a user turn: sent as is, markers stripped.
    marked = body()
    marked["messages"][2]["content"][1]["cache_control"] = {"type": "ephemeral"}
    last, filler = Prompt(marked).truncated(8)
    assert not filler and "cache_control" not in str(last)
    assert len(last["messages"][-1]["content"]) == 2


def test_prompt_never_mutates_the_body() -> None:
    original = body(cache_control={"type": "ephemeral"})
    snapshot = copy.deepcopy(original)
    prompt = Prompt(original)
    for i in range(len(prompt)):
        prompt.truncated(i)
    assert original == snapshot


def test_canonical_json_sort_all_only_changes_user_json_order() -> None:
    a = {"type": "tool_use", "input": {"b": 1, "a": 2}, "id": "x", "name": "n"}
    b = {"name": "n", "id": "x", "type": "tool_use", "input": {"a": 2, "b": 1}}
    assert canonical_json(a) != canonical_json(b)
    assert canonical_json(a, sort_all=True) == canonical_json(b, sort_all=True)
