"""Invariants of every plan, on random requests and random traffic histories (hypothesis)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, example, given, settings

from cachewise.planner import CachePlanner
from cachewise.pricing import PriceBook
from cachewise.prompt import Prompt, strip_cache_control
from cachewise.tokens import TokenCounter, TokenMemo
from tests.fixtures.planning import VirtualClock, fake_tokens
from tests.strategies import history, request_bodies


def _markers(body: dict[str, Any]) -> list[tuple[str, str]]:
    """Every marker in processing order (path, ttl); the top-level one last (it sits on the last block)."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("cache_control"), dict) and path:
                found.append((path, node["cache_control"].get("ttl", "5m")))
            for key in ("tools", "system", "messages", "content", "source"):
                if key in node:
                    walk(node[key], f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}.{i}")

    walk(body, "")
    if isinstance(body.get("cache_control"), dict):
        found.append(("<automatic>", body["cache_control"].get("ttl", "5m")))
    return found


def _ttl_order_ok(markers: list[tuple[str, str]]) -> bool:
    seen_5m = False
    for _, ttl in markers:
        if ttl == "1h" and seen_5m:
            return False
        seen_5m = seen_5m or ttl == "5m"
    return True


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    out = strip_cache_control(body)
    if isinstance(out.get("system"), str):
        out["system"] = [{"type": "text", "text": out["system"]}]
    for message in out["messages"]:
        if isinstance(message["content"], str):
            message["content"] = [{"type": "text", "text": message["content"]}]
    return dict(out)


#: Found by hypothesis: a tool result marked 1h with a 5m marker inside its content; a 1h on a later
#: block would follow that 5m (the choice must see the 5m as the candidate's last TTL).
_NESTED_5M = {
    "model": "claude-test",
    "max_tokens": 10,
    "tools": [
        {
            "name": f"tool{i}",
            "description": "alpha0 kappa1 delta2 omega3 theta4",
            "input_schema": {"type": "object"},
        }
        | ({"cache_control": {"type": "ephemeral", "ttl": "1h"}} if i == 0 else {})
        for i in range(3)
    ],
    "messages": [
        {"role": "user", "content": "alpha0 kappa1"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "alpha0 kappa1 delta2"},
                {"type": "tool_use", "id": "toolu_0_0", "name": "f", "input": {"k": "toolu_0_0"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_0_0",
                    "content": [
                        {
                            "type": "text",
                            "text": "alpha0 kappa1 delta2 omega3 theta4",
                            "cache_control": {"type": "ephemeral"},
                        }
                    ],
                    "cache_control": {"type": "ephemeral", "ttl": "1h"},
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo" * 60},
                },
            ],
        },
    ],
}


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=request_bodies(["claude-test", "claude-unsure"]), past=history())
@example(body=_NESTED_5M, past=[(90.0, True)])
def test_every_plan_is_valid(
    body: dict[str, Any], past: list[tuple[float, bool]], table_book: PriceBook
) -> None:
    book = table_book
    clock = VirtualClock()
    counter = TokenCounter(fake_tokens, memo=TokenMemo(None))
    planner = CachePlanner(counter, book=book, clock=clock)
    for gap, cached in past:
        earlier = planner.plan(body)
        top = max((b.tokens for b in earlier.breakpoints), default=0)
        planner.observe(earlier, {"input_tokens": 5, "cache_creation_input_tokens": top if cached else 0})
        clock.advance(gap)
    original = copy.deepcopy(body)
    plan = planner.plan(body)

    assert body == original  # the caller's dict is never mutated
    before, after = _markers(original), _markers(plan.request)
    if len(before) > 4 or not _ttl_order_ok(before):
        assert plan.request == original  # invalid input: nothing added
        return
    assert len(after) <= 4
    assert len(plan.breakpoints) <= 4
    assert _ttl_order_ok(after)
    assert set(before) <= set(after)  # the caller's markers, unchanged
    assert _normalise(plan.request) == _normalise(original)  # otherwise unchanged
    prompt = Prompt(plan.request)
    by_path = {p.path: p for p in prompt.positions}
    for bp in plan.added:
        pos = by_path[bp.path]
        assert pos.markable and pos.kind not in ("thinking", "redacted_thinking")
        assert ".content.0.content" not in bp.path and ".source." not in bp.path
        assert counter.count(prompt, pos.index) >= (plan.minimum or 0)  # never below the minimum
