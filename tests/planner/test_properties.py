"""Invariants of every plan, on random requests and random traffic histories (hypothesis)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachewise.planner import CachePlanner
from cachewise.pricing import PriceBook
from cachewise.prompt import Prompt, strip_cache_control
from cachewise.tokens import TokenCounter, TokenMemo

from .conftest import TABLE, VirtualClock, fake_tokens, words

MARK_5M = {"type": "ephemeral"}
MARK_1H = {"type": "ephemeral", "ttl": "1h"}


@st.composite
def text_block(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.sampled_from([0, 3, 40, 400, 1500]))
    return {"type": "text", "text": words(size, draw(st.integers(0, 9))) if size else ""}


@st.composite
def user_content(draw: st.DrawFn, ids: list[str]) -> Any:
    if draw(st.booleans()) and not ids:
        return words(draw(st.sampled_from([2, 60, 900])), draw(st.integers(0, 9)))
    blocks: list[dict[str, Any]] = []
    for tid in ids:
        inner = draw(st.sampled_from(["str", "list", "marked"]))
        content: Any = words(draw(st.sampled_from([5, 300])))
        if inner != "str":
            content = [{"type": "text", "text": content}]
            if inner == "marked":
                content[-1]["cache_control"] = dict(MARK_5M)
        blocks.append({"type": "tool_result", "tool_use_id": tid, "content": content})
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["text", "document", "image"]))
        if kind == "text":
            blocks.append(draw(text_block()))
        elif kind == "document":
            blocks.append(
                {
                    "type": "document",
                    "source": {
                        "type": "content",
                        "content": [{"type": "text", "text": words(draw(st.sampled_from([50, 1200])))}],
                    },
                }
            )
        else:
            blocks.append(
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo" * 40},
                }
            )
    return blocks or [{"type": "text", "text": "go"}]


@st.composite
def assistant_content(draw: st.DrawFn, turn: int) -> tuple[Any, list[str]]:
    if draw(st.booleans()):
        return words(draw(st.sampled_from([3, 200]))), []
    blocks: list[dict[str, Any]] = []
    if draw(st.booleans()):
        blocks.append({"type": "thinking", "thinking": words(30), "signature": "sig"})
    if draw(st.booleans()):
        blocks.append({"type": "redacted_thinking", "data": "abc"})
    blocks.append(draw(text_block()))
    ids = [f"toolu_{turn}_{k}" for k in range(draw(st.integers(0, 3)))]
    blocks.extend({"type": "tool_use", "id": tid, "name": "f", "input": {"k": tid}} for tid in ids)
    return blocks, ids


@st.composite
def request(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": draw(st.sampled_from(["claude-test", "claude-unsure"])),
        "max_tokens": 10,
    }
    tools = [
        {
            "name": f"tool{i}",
            "description": words(draw(st.sampled_from([5, 500]))),
            "input_schema": {"type": "object"},
        }
        for i in range(draw(st.integers(0, 3)))
    ]
    if tools:
        body["tools"] = tools
    system_kind = draw(st.sampled_from(["none", "str", "blocks"]))
    if system_kind == "str":
        body["system"] = words(draw(st.sampled_from([10, 700, 2500])))
    elif system_kind == "blocks":
        body["system"] = draw(st.lists(text_block(), min_size=1, max_size=3))
    messages: list[dict[str, Any]] = []
    ids: list[str] = []
    for turn in range(draw(st.integers(1, 7))):
        messages.append({"role": "user", "content": draw(user_content(ids))})
        if turn < 6 and draw(st.booleans()):
            content, ids = draw(assistant_content(turn))
            messages.append({"role": "assistant", "content": content})
        else:
            ids = []
            break
    if ids:
        messages.append({"role": "user", "content": draw(user_content(ids))})
    body["messages"] = messages
    # The caller's own markers: on random markable blocks, in a valid TTL order, sometimes too many.
    slots = list(_markable_blocks(body))
    chosen = sorted(
        draw(st.sets(st.sampled_from(range(len(slots))), max_size=min(5, len(slots)))) if slots else []
    )
    switch = draw(st.integers(0, len(chosen)))
    for n, k in enumerate(chosen):
        slots[k]["cache_control"] = dict(MARK_1H if n < switch else MARK_5M)
    if draw(st.booleans()):
        body["cache_control"] = dict(MARK_5M)
    return body


def _markable_blocks(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from body.get("tools") or []
    if isinstance(body.get("system"), list):
        yield from (b for b in body["system"] if b.get("text"))
    for message in body["messages"]:
        if isinstance(message["content"], list):
            yield from (
                b
                for b in message["content"]
                if b["type"] not in ("thinking", "redacted_thinking") and (b["type"] != "text" or b["text"])
            )


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


@st.composite
def history(draw: st.DrawFn) -> list[tuple[float, bool]]:
    """Earlier calls before the planned one: (seconds before the next, whether the server cached)."""
    return draw(st.lists(st.tuples(st.sampled_from([5.0, 90.0, 1500.0, 7200.0]), st.booleans()), max_size=4))


BOOK: PriceBook | None = None


def _book(tmp: Any) -> PriceBook:
    global BOOK
    if BOOK is None:
        path = tmp.mktemp("prices") / "prices.yaml"
        path.write_text(TABLE, encoding="utf-8")
        BOOK = PriceBook.load(base=path)
    return BOOK


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=request(), past=history())
def test_every_plan_is_valid(
    body: dict[str, Any], past: list[tuple[float, bool]], tmp_path_factory: Any
) -> None:
    book = _book(tmp_path_factory)
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
