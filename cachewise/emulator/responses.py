"""Deterministic replies: text seeded by the request, or a schema-valid ``tool_use``.

* The seed is the SHA-256 of the request body, so the same request gets the same reply.
* Text is 12–59 tokens of short words (each one token under the emulator's tokenizer),
  cut at ``max_tokens`` (``stop_reason`` ``"max_tokens"``), or before the first
  ``stop_sequences`` entry found (``"stop_sequence"``), else ``"end_turn"``.
* ``tool_choice`` ``any``/``tool`` always calls a tool; ``auto`` calls one when the seed
  says so (about one request in three); ``none`` never. The input holds the schema's
  required properties with values of the right type (``stop_reason`` ``"tool_use"``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .tokenizer import count_json, count_text

__all__ = ["Reply", "example_value", "generate"]

# Every word is at most 4 letters, so each is exactly one token.
# fmt: off
_WORDS = (
    "the", "hit", "was", "warm", "and", "the", "bill", "was", "low", "so", "we", "kept", "the",
    "same", "tool", "and", "sent", "each", "turn", "with", "one", "more", "mark", "near", "the", "end",
    "of", "the", "long", "base", "part",
)
# fmt: on


@dataclass(frozen=True, slots=True)
class Reply:
    content: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int


# A schema asking for more items or characters than this gets this many (the reply stays small).
_MAX_ITEMS = 64


def _whole(value: Any) -> int | None:
    """A JSON-schema bound as an int, or None when it is absent or not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)


def example_value(schema: Any, name: str = "value", depth: int = 0) -> Any:
    """A value that validates against a (simple) JSON schema: required properties, right types."""
    if not isinstance(schema, Mapping) or depth > 8:
        return name
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_value(options[0], name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        raw_props = schema.get("properties")
        props: Mapping[str, Any] = raw_props if isinstance(raw_props, Mapping) else {}
        raw_required = schema.get("required")
        required = [r for r in raw_required if isinstance(r, str)] if isinstance(raw_required, list) else []
        return {key: example_value(props.get(key, {}), key, depth + 1) for key in required}
    if kind == "array":
        count = min(_whole(schema.get("minItems")) or 0, _MAX_ITEMS)
        return [example_value(schema.get("items", {}), name, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        low = _whole(schema.get("minimum", schema.get("exclusiveMinimum")))
        value = 1 if low is None else low + (1 if "exclusiveMinimum" in schema else 0)
        high = _whole(schema.get("maximum"))
        if high is not None and value > high:
            value = high
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = f"{name}_example"
    minimum = min(_whole(schema.get("minLength")) or 0, _MAX_ITEMS)
    maximum = _whole(schema.get("maxLength"))
    if len(text) < minimum:
        text = text + "x" * (minimum - len(text))
    if maximum is not None:
        text = text[: max(0, maximum)]
    return text


def _text(seed: bytes, max_tokens: int, stops: Sequence[str]) -> Reply:
    target = 12 + seed[0] % 48
    pieces: list[str] = []
    for i in range(min(target, max_tokens)):
        if i % 9 == 8:
            pieces.append(".")
        else:
            pieces.append(_WORDS[(seed[(i % 30) + 1] + i * 7) % len(_WORDS)])
    text = ""
    for piece in pieces:
        text = text + piece if piece == "." or not text else f"{text} {piece}"
    stop_reason = "max_tokens" if target > max_tokens else "end_turn"
    stop_sequence: str | None = None
    found = [(text.find(s), s) for s in stops if s and s in text]
    if found:
        index, stop_sequence = min(found)
        text = text[:index]
        stop_reason = "stop_sequence"
    return Reply([{"type": "text", "text": text}], stop_reason, stop_sequence, max(1, count_text(text)))


def _custom_tools(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tools = body.get("tools") or []
    return [
        t
        for t in tools
        if isinstance(t, Mapping) and t.get("type") in (None, "custom") and isinstance(t.get("name"), str)
    ]


def generate(body: Mapping[str, Any], seed: bytes) -> Reply:
    """The reply to ``body`` (whose ``max_tokens`` is at least 1)."""
    max_tokens = int(body["max_tokens"])
    stops = [s for s in body.get("stop_sequences") or [] if isinstance(s, str)]
    tools = _custom_tools(body)
    choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), Mapping) else {"type": "auto"}
    assert isinstance(choice, Mapping)
    kind = choice.get("type", "auto")
    tool: Mapping[str, Any] | None = None
    if tools and kind == "tool":
        tool = next((t for t in tools if t["name"] == choice.get("name")), None)
    elif tools and (kind == "any" or (kind == "auto" and seed[31] % 3 == 0)):
        tool = tools[seed[30] % len(tools)]
    if tool is not None:
        arguments = example_value(tool.get("input_schema", {"type": "object"}), "input")
        tokens = count_text(str(tool["name"])) + count_json(arguments)
        if tokens <= max_tokens:
            block = {
                "type": "tool_use",
                "id": "toolu_" + hashlib.sha256(seed + b"tool").hexdigest()[:24],
                "name": tool["name"],
                "input": arguments,
            }
            return Reply([block], "tool_use", None, tokens)
    return _text(seed, max_tokens, stops)
