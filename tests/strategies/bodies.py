"""Shared hypothesis strategies: request bodies, traffic histories, token counts, ledger calls.

Import them as ``from tests.strategies import ...``. Each generates exactly what the test that
first defined it generated; where tests differ in a detail (the models, a bound), it is a parameter
or a second named strategy, not a change.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "MARK_1H",
    "MARK_5M",
    "assistant_content",
    "history",
    "ledger_calls",
    "markable_blocks",
    "request_bodies",
    "request_token_counts",
    "text_block",
    "token_counts",
    "user_content",
    "words",
]

MARK_5M = {"type": "ephemeral"}
MARK_1H = {"type": "ephemeral", "ttl": "1h"}


def words(n: int, seed: int = 0) -> str:
    """``n`` distinct-looking words, the same for the same ``seed`` (``alpha0 theta1 …``)."""
    vocab = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "theta",
        "kappa",
        "lambda",
        "sigma",
        "omega",
    ]
    return " ".join(vocab[(i * 7 + seed) % len(vocab)] + str((i + seed) % 97) for i in range(n))


# -- request bodies (the planner's properties; any test that needs random Messages requests) ----


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
def request_bodies(draw: st.DrawFn, models: Sequence[str]) -> dict[str, Any]:
    """A Messages request on one of ``models``: tools, system, turns with tool use, thinking,
    documents and images, and the caller's own markers (valid TTL order, sometimes too many)."""
    body: dict[str, Any] = {
        "model": draw(st.sampled_from(list(models))),
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
    slots = list(markable_blocks(body))
    chosen = sorted(
        draw(st.sets(st.sampled_from(range(len(slots))), max_size=min(5, len(slots)))) if slots else []
    )
    switch = draw(st.integers(0, len(chosen)))
    for n, k in enumerate(chosen):
        slots[k]["cache_control"] = dict(MARK_1H if n < switch else MARK_5M)
    if draw(st.booleans()):
        body["cache_control"] = dict(MARK_5M)
    return body


def markable_blocks(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The blocks of ``body`` that may carry ``cache_control``, in processing order."""
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


@st.composite
def history(draw: st.DrawFn) -> list[tuple[float, bool]]:
    """Earlier calls before the planned one: (seconds before the next, whether the server cached)."""
    return draw(st.lists(st.tuples(st.sampled_from([5.0, 90.0, 1500.0, 7200.0]), st.booleans()), max_size=4))


# -- token counts -------------------------------------------------------------------------------

token_counts = st.integers(min_value=0, max_value=5 * 10**8)
"""A token count a usage object may carry: half of ``cachewise.usage.MAX_TOKEN_COUNT`` (10^9), so
the 5m and 1h writes summed stay a trusted total."""

request_token_counts = st.integers(min_value=0, max_value=2_000_000)
"""Tokens of one kind in one request (up to past the largest context window)."""


# -- ledgers ------------------------------------------------------------------------------------


def ledger_calls(models: Sequence[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Up to 25 calls over three days on ``models``: minute, prefix, feature tag and token counts."""
    return st.lists(
        st.fixed_dictionaries(
            {
                "minute": st.integers(0, 3 * 24 * 60),
                "model": st.sampled_from(list(models)),
                "prefix": st.sampled_from(["A", "B", None]),
                "feature": st.sampled_from(["x", "y"]),
                "input": st.integers(0, 5000),
                "w5": st.integers(0, 5000),
                "w1": st.integers(0, 5000),
                "read": st.integers(0, 5000),
                "out": st.integers(0, 2000),
            }
        ),
        max_size=25,
    )
