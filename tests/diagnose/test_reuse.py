"""The miss watch reuses the planner's reading of a body: the same view as reading the sent body again."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from cachewise.diagnose import MissWatch, Seen
from cachewise.planner import CachePlanner
from cachewise.prompt import Prompt
from cachewise.tokens import TokenCounter, TokenMemo

T0 = datetime(2026, 4, 1, 9, tzinfo=UTC)
HANDBOOK = "Pallets of kind seven go to aisle four, by the loading dock. " * 200


def _bodies() -> list[dict[str, Any]]:
    tool = {"name": "find", "description": "Find a pallet.", "input_schema": {"type": "object"}}
    turns: list[dict[str, Any]] = [
        {"role": "user", "content": "Where is pallet 7?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "t1", "name": "find", "input": {"n": 7}},
                {"type": "tool_use", "id": "t2", "name": "find", "input": {"n": 8}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "aisle 4 " * 400},
                {"type": "tool_result", "tool_use_id": "t2", "content": "aisle 5"},
            ],
        },
    ]
    return [
        {"model": "claude-sonnet-4-6", "max_tokens": 5, "system": HANDBOOK, "messages": turns[:1]},
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 5,
            "tools": [tool],
            "system": HANDBOOK,
            "messages": turns,
        },
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 5,
            "system": [
                {"type": "text", "text": HANDBOOK, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
            ],
            "messages": turns,
        },
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 5,
            "cache_control": {"type": "ephemeral"},
            "messages": turns,
        },
    ]


@pytest.mark.parametrize("index", range(4))
def test_the_planners_reading_plus_its_markers_is_the_sent_bodys(index: int) -> None:
    body = _bodies()[index]
    counter = TokenCounter(lambda b: len(json.dumps(b)) // 4, memo=TokenMemo(None))
    planner = CachePlanner(counter, clock=lambda: T0)
    plan = planner.plan(body)
    assert plan.prompt is not None
    sent = plan.request if plan.added else body
    added = [(b.position, b.ttl) for b in plan.added]
    reused, reread = Seen.of(plan.prompt, T0, added), Seen.of(Prompt(sent), T0)
    # the same hashes, levels, sizes and markers; the text bytes are those the planner read: a string
    # system or turn it turned into a marked block counts its "type" too when read again
    assert reused == replace(reread, cum_text=reused.cum_text)
    assert reused.cum_text == Seen.of(Prompt(body), T0).cum_text
    if index < 3:
        assert plan.added  # the planner marked something, so the markers were merged
    look, _ = MissWatch(diagnostics=False).before(sent, T0, plan.prompt, added)
    assert look.seen == reused
