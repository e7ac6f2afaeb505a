"""Differential: the planner's layout (``cachewise.prompt``) and the emulator's agree.

Two independent readings of a request as cache positions: the planner's, which decides
where markers go, and the emulator's, which bills them. For random pairs of request
bodies (a body, and a variant of it), both must give the same position paths, and must
agree position by position on whether the two bodies share the prefix ending there.
The hashes themselves differ (each side has its own); only equality is compared.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from cachewise.emulator.positions import layout
from cachewise.prompt import Prompt

MODEL = "claude-sonnet-5"
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}

_words = st.sampled_from(["tok", "tok tok", "hello", "a b", "word"])
_marker = st.sampled_from([None, None, None, {"type": "ephemeral"}])


def _with_marker(block: dict[str, Any], marker: dict[str, Any] | None) -> dict[str, Any]:
    return {**block, "cache_control": marker} if marker else block


@st.composite
def _block(draw: st.DrawFn, role: str, n: int) -> dict[str, Any]:
    kinds = (
        ["text", "text", "tool_use"]
        if role == "assistant"
        else ["text", "text", "image", "document", "tool_result"]
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "text":
        block: dict[str, Any] = {"type": "text", "text": draw(_words)}
    elif kind == "image":
        block = copy.deepcopy(IMAGE)
    elif kind == "document":
        block = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": draw(_words)},
            **({"citations": {"enabled": True}} if draw(st.booleans()) else {}),
        }
    elif kind == "tool_use":
        block = {"type": "tool_use", "id": f"toolu_{n}", "name": "f", "input": {"a": draw(_words), "b": 1}}
    else:
        inner = st.sampled_from([draw(_words), [{"type": "text", "text": "ok"}], [copy.deepcopy(IMAGE)]])
        block = {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": draw(inner)}
    return _with_marker(block, draw(_marker))


@st.composite
def _body(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for m in range(draw(st.integers(1, 4))):
        role = "user" if m % 2 == 0 else "assistant"
        if draw(st.integers(0, 3)) == 0:
            content: Any = draw(_words)
        else:
            content = [draw(_block(role, m * 10 + k)) for k in range(draw(st.integers(1, 4)))]
        messages.append({"role": role, "content": content})
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 8, "messages": messages}
    system = draw(st.sampled_from(["none", "str", "list"]))
    if system == "str":
        body["system"] = draw(_words)
    elif system == "list":
        body["system"] = [
            _with_marker({"type": "text", "text": draw(_words)}, draw(_marker)) for _ in range(2)
        ]
    if draw(st.booleans()):
        body["tools"] = [
            {"name": "f", "description": draw(_words), "input_schema": {"type": "object", "properties": {}}}
        ]
    for key, values in _SETTINGS.items():
        value = draw(st.sampled_from(values))
        if value is not _ABSENT:
            body[key] = value
    return body


_ABSENT: Any = object()
_SETTINGS: dict[str, list[Any]] = {
    "tool_choice": [
        _ABSENT,
        {"type": "auto"},
        {"type": "any"},
        {"type": "auto", "disable_parallel_tool_use": True},
    ],
    "thinking": [
        _ABSENT,
        {"type": "disabled"},
        {"type": "enabled", "budget_tokens": 1024},
        {"type": "adaptive"},
    ],
    "output_config": [_ABSENT, {"effort": "high"}, {"effort": "low"}],
    "speed": [_ABSENT, "standard", "fast"],
}


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = [b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
    return out + [b for b in body.get("system") or [] if isinstance(b, dict)]


@st.composite
def _variant(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with one to three changes: some change the prefix, some must not."""
    other = copy.deepcopy(body)
    for _ in range(draw(st.integers(1, 3))):
        change = draw(
            st.sampled_from(
                [
                    "text",
                    "reorder",
                    "reorder_input",
                    "marker",
                    "setting",
                    "image",
                    "nested_image",
                    "append",
                    "truncate",
                    "model",
                    "string_content",
                    "web_search",
                    "citations",
                    "tool",
                ]
            )
        )
        blocks = _blocks(other)
        messages = other["messages"]
        if change == "text" and blocks:
            block = draw(st.sampled_from(blocks))
            if block.get("type") == "text":
                block["text"] = draw(_words)
        elif change == "reorder" and blocks:
            block = draw(st.sampled_from(blocks))
            items = list(block.items())
            block.clear()
            block.update(reversed(items))  # envelope key order is not part of the prompt
        elif change == "reorder_input":
            for block in blocks:
                if block.get("type") == "tool_use":
                    block["input"] = dict(reversed(list(block["input"].items())))  # it is
                    break
        elif change == "marker" and blocks:
            block = draw(st.sampled_from(blocks))
            if "cache_control" in block:
                del block["cache_control"]
            elif block.get("type") not in ("thinking", "redacted_thinking"):
                block["cache_control"] = {"type": "ephemeral"}
        elif change == "setting":
            key = draw(st.sampled_from(sorted(_SETTINGS)))
            value = draw(st.sampled_from(_SETTINGS[key]))
            if value is _ABSENT:
                other.pop(key, None)
            else:
                other[key] = value
        elif change == "image":
            messages.append(
                {"role": "user", "content": [copy.deepcopy(IMAGE), {"type": "text", "text": "x"}]}
            )
        elif change == "nested_image":
            for block in blocks:
                if block.get("type") == "tool_result" and isinstance(block["content"], list):
                    block["content"].append(copy.deepcopy(IMAGE))
                    break
        elif change == "append":
            messages.append({"role": draw(st.sampled_from(["user", "assistant"])), "content": draw(_words)})
        elif change == "truncate" and len(messages) > 1:
            messages.pop()
        elif change == "model":
            other["model"] = "claude-opus-5"
        elif change == "string_content":
            for message in messages:
                if isinstance(message["content"], str):
                    message["content"] = [{"type": "text", "text": message["content"]}]  # the same prompt
                    break
        elif change == "web_search":
            other["tools"] = [*other.get("tools", []), {"type": "web_search_20250305", "name": "web_search"}]
        elif change == "citations":
            for block in blocks:
                if block.get("type") == "document":
                    block["citations"] = {"enabled": not (block.get("citations") or {}).get("enabled")}
                    break
        elif change == "tool" and other.get("tools"):
            other["tools"][0]["description"] = draw(_words) + " changed"
    # At most four markers, as the API allows (the emulator refuses more).
    marked = [b for b in _blocks(other) if "cache_control" in b]
    for block in marked[4:]:
        del block["cache_control"]
    return other


def _emulator_view(body: dict[str, Any]) -> tuple[list[str], list[bytes]]:
    plan = layout(body, body["model"])
    return [p.path for p in plan.positions], [p.digest for p in plan.positions]


def _planner_view(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    prompt = Prompt(body)
    return [p.path for p in prompt.positions], [p.prefix_hash for p in prompt.positions]


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    first = draw(_body())
    for block in [b for b in _blocks(first) if "cache_control" in b][4:]:
        del block["cache_control"]
    return first, draw(_variant(first))


@settings(max_examples=400, deadline=None)
@given(_pairs())
def test_planner_and_emulator_agree_on_paths_and_prefix_equality(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = pair
    emu_paths_a, emu_a = _emulator_view(first)
    emu_paths_b, emu_b = _emulator_view(second)
    plan_paths_a, plan_a = _planner_view(first)
    plan_paths_b, plan_b = _planner_view(second)
    assert emu_paths_a == plan_paths_a
    assert emu_paths_b == plan_paths_b
    for i in range(min(len(emu_a), len(emu_b))):
        note(f"position {i}: {emu_paths_a[i]} / {emu_paths_b[i]}")
        assert (emu_a[i] == emu_b[i]) == (plan_a[i] == plan_b[i]), i


def test_a_second_image_invalidates_messages_for_both() -> None:
    # "Adding/removing images anywhere in the prompt" invalidates the messages level:
    # a second image is an image added, so the prefix before it changes for both readings.
    one = {
        "model": MODEL,
        "messages": [{"role": "user", "content": [copy.deepcopy(IMAGE), {"type": "text", "text": "a"}]}],
    }
    two = copy.deepcopy(one)
    two["messages"].append({"role": "user", "content": [copy.deepcopy(IMAGE)]})
    assert _emulator_view(one)[1][0] != _emulator_view(two)[1][0]
    assert _planner_view(one)[1][0] != _planner_view(two)[1][0]


def test_envelope_key_order_is_not_part_of_the_prefix_but_tool_input_order_is() -> None:
    a = {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]}
    b = {"model": MODEL, "messages": [{"role": "user", "content": [{"text": "a", "type": "text"}]}]}
    assert _emulator_view(a)[1] == _emulator_view(b)[1]
    use_ab = {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1, "b": 2}}
    use_ba = {"type": "tool_use", "id": "t", "name": "f", "input": {"b": 2, "a": 1}}
    c = {"model": MODEL, "messages": [{"role": "assistant", "content": [use_ab]}]}
    d = {"model": MODEL, "messages": [{"role": "assistant", "content": [use_ba]}]}
    assert _emulator_view(c)[1] != _emulator_view(d)[1]
    assert _planner_view(c)[1] != _planner_view(d)[1]
