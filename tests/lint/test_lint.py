"""Cache-buster lint: volatile content before a breakpoint, invalid markers, churn across a family."""

from __future__ import annotations

from typing import Any

import pytest

from cachewise.lint import lint, lint_family
from tests.strategies import words


def request(system: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "What changed at 2026-11-22T10:00:00Z?"}],
    }
    body.update(over)
    return body


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Current time: 2026-11-22T10:15:03Z.", "ISO timestamp"),
        ("Session 3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b", "UUID"),
        ("Trace req_011CUdLmtJeNdp9Xkkd7wVGq", "request id"),
        ("Today is November 22, 2026.", "date"),
        ("nonce 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "long hex string"),
        ("token Zx81kQ_pLm0aT7rR2vYwB9nC4dE", "nonce-like token"),
    ],
)
def test_volatile_content_before_a_breakpoint_is_named(text: str, label: str) -> None:
    found = lint(request(words(20) + " " + text))
    assert [(w.rule, w.path) for w in found] == [("volatile-content", "system.0.text")]
    assert label in found[0].message


def test_content_after_the_last_breakpoint_is_fine() -> None:
    assert lint(request(words(50))) == []


def test_without_markers_the_whole_prompt_is_checked() -> None:
    body = request(words(5))
    body["system"] = "stable"
    found = lint(body)
    assert [w.path for w in found] == ["messages.0.content"]


def test_volatile_field_names_in_tool_results() -> None:
    body = request(words(5))
    body["messages"] = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "ok"}],
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
    ]
    body["messages"][1]["content"][0]["input"] = {"query": "x", "request_id": "abc"}
    found = lint(body)
    assert [w.path for w in found] == ["messages.1.content.0.input.request_id"]


def test_invalid_markers_are_errors() -> None:
    body = request(words(5), cache_control={"type": "ephemeral"})
    body["messages"] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "b", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            ],
        }
    ]
    found = {(w.rule, w.path, w.severity) for w in lint(body)}
    assert ("invalid-marker", "cache_control", "error") in found  # 5 > 4
    assert ("invalid-marker", "messages.0.content.1", "error") in found  # empty text
    assert ("invalid-marker", "messages.0.content.2.cache_control.ttl", "error") in found


def test_family_reordered_tools_and_unsorted_keys() -> None:
    tool_a = {"name": "a", "description": "x", "input_schema": {"type": "object", "properties": {}}}
    tool_b = {"name": "b", "description": "y", "input_schema": {"properties": {}, "type": "object"}}
    tool_b2 = {"name": "b", "description": "y", "input_schema": {"type": "object", "properties": {}}}
    first = request(words(5), tools=[tool_a, tool_b])
    second = request(words(5), tools=[tool_b2, tool_a])
    found = {(w.rule, w.path) for w in lint_family([first, second])}
    assert ("reordered-tools", "tools") in found
    assert ("unsorted-keys", "tools.0") in found


def test_family_tool_use_input_key_order() -> None:
    def call(order: dict[str, Any]) -> dict[str, Any]:
        body = request(words(5))
        body["messages"] = [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": order}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
        ]
        return body

    found = lint_family([call({"a": 1, "b": 2}), call({"b": 2, "a": 1})])
    assert [(w.rule, w.path, w.request) for w in found] == [
        ("unsorted-keys", "messages.1.content.0.input", 1)
    ]


def test_family_prefix_churn_names_where_it_breaks() -> None:
    stable = words(30)
    first = request(f"{stable} Build 4f1c2a9e8b7d6c5f4e3d2c1b")
    second = request(f"{stable} Build 9a8b7c6d5e4f3a2b1c0d9e8f")
    rules = {(w.rule, w.path) for w in lint_family([first, second])}
    assert ("prefix-churn", "system.0") in rules


@pytest.mark.parametrize(
    ("marker", "path", "allowed"),
    [
        ({"type": "ephemeral", "ttl": "2h"}, "system.0.cache_control.ttl", "'5m' or '1h'"),
        ({"type": "ephemeral", "ttl": 300}, "system.0.cache_control.ttl", "'5m' or '1h'"),
        ({"type": "persistent"}, "system.0.cache_control.type", "'ephemeral'"),
        ("ephemeral", "system.0.cache_control", "'ephemeral'"),
    ],
)
def test_a_marker_the_api_rejects_names_its_path_and_the_allowed_values(
    marker: Any, path: str, allowed: str
) -> None:
    body = request(words(5))
    body["system"][0]["cache_control"] = marker
    found = [w for w in lint(body) if w.rule == "invalid-marker"]
    assert [(w.path, w.severity) for w in found] == [(path, "error")]
    assert allowed in found[0].message and "docs/api-notes.md §1.2" in found[0].message


def test_invalid_ttl_is_found_anywhere_a_marker_may_sit() -> None:
    body = request(words(5), cache_control={"type": "ephemeral", "ttl": "1d"})
    body["tools"] = [
        {
            "name": "f",
            "input_schema": {"type": "object", "properties": {"cache_control": {"type": "string"}}},
            "cache_control": {"type": "ephemeral", "ttl": "10m"},
        }
    ]
    body["messages"] = [
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "text", "text": "ok", "cache_control": {"ttl": "5m"}}],
                }
            ],
        }
    ]
    paths = {w.path for w in lint(body) if w.rule == "invalid-marker"}
    assert paths == {
        "cache_control.ttl",
        "tools.0.cache_control.ttl",
        "messages.0.content.0.content.0.cache_control.type",
    }


@pytest.mark.parametrize("ttl", [None, "5m", "1h"])
def test_allowed_markers_are_not_flagged(ttl: str | None) -> None:
    body = request(words(50))
    if ttl is not None:
        body["system"][0]["cache_control"]["ttl"] = ttl
    assert lint(body) == []


def test_a_warning_as_json_fields() -> None:
    body = request(words(5))
    body["system"][0]["cache_control"]["ttl"] = "2h"
    (found,) = lint(body, index=3)
    assert found.as_dict() == {
        "rule": "invalid-marker",
        "path": "system.0.cache_control.ttl",
        "message": found.message,
        "severity": "error",
        "request": 3,
    }
