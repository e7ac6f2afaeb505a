"""A Messages request body as ordered cache positions, with a canonical hash of every prefix.

The request stays a plain dict (the SDK's ``MessageParam`` / ``TextBlockParam`` shapes);
:class:`Prompt` only reads it. Layout (docs/api-notes.md §1.1):

* order ``tools`` → ``system`` → ``messages``;
* one position per tool, per system text block (a string system is one), per message
  content block (a string content is one); with ``collapse_runs`` (the Claude API) a run of
  consecutive ``tool_use`` blocks is one position, and so is a run of ``tool_result`` blocks;
  the marker of a run goes on its last block. Without ``collapse_runs`` each block of a run is a
  position, and those before the run's last block are ``inside_run`` (the planner never marks
  them: what a marker inside a run does is read differently, docs/planner.md).

Prefix hash: a running SHA-256 seeded with the model. Each position adds the canonical
JSON of its blocks with every ``cache_control`` removed. Envelope keys are sorted; the
key order *inside* user JSON (``tool_use.input``, a tool's ``input_schema``) is kept,
because the API renders those bytes and a reordered object misses (docs/api-notes.md §2.4). Each
level is salted with the settings that invalidate it (docs/api-notes.md §2.4): ``speed``, web
search and citations toggles before ``system``; ``tool_choice`` (with
``disable_parallel_tool_use``), the image count, thinking config and
``output_config.effort`` before ``messages``. Defaults equal omission. So a prefix hash
changes exactly when the API would see a different prefix.

Byte sizes give offline token bounds (see :mod:`cachewise.tokens`): ``nbytes`` is the
canonical size (tokens ≤ bytes), ``text_bytes`` the non-whitespace text outside binary
payloads (tokens ≥ text_bytes / 8, a heuristic).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from .api_rules import COUNT_TOKENS_REFUSED_TOOL_PREFIXES, RUN_BLOCK_TYPES, Ttl

__all__ = ["Level", "Marker", "Position", "Prompt", "Ttl", "canonical_json", "strip_cache_control"]

Level = Literal["tools", "system", "messages"]

_UNMARKABLE = {
    "thinking": "thinking blocks cannot carry cache_control",
    "redacted_thinking": "redacted_thinking blocks cannot carry cache_control",
}
_RUN_TYPES = RUN_BLOCK_TYPES
_ORDERED_KEYS = frozenset({"input", "input_schema"})
_BINARY_KEYS = frozenset({"data"})
_HASH_VERSION = b"cachewise-prefix-v1\x00"


def strip_cache_control(value: Any) -> Any:
    """A copy of ``value`` without any ``cache_control`` key, at any depth."""
    if isinstance(value, Mapping):
        return {k: strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [strip_cache_control(v) for v in value]
    return value


def _canon(value: Any, ordered: bool) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | Mapping):
        keys = list(value.keys()) if ordered else sorted(value.keys(), key=str)
        return {str(k): _canon(value[k], ordered or k in _ORDERED_KEYS) for k in keys if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_canon(v, ordered) for v in value]
    return value


_SCALARS = (str, int, float, bool, type(None))
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_HEADS = {
    role: json.dumps({"message": True, "role": role}, separators=(",", ":")).encode()
    for role in ("user", "assistant", "system")
}


def canonical_json(value: Any, *, sort_all: bool = False) -> bytes:
    """Canonical bytes of a block: no ``cache_control``, envelope keys sorted, user JSON in its order.

    ``sort_all`` sorts user JSON too (the lint compares both to find key-order churn).
    """
    if (
        not sort_all
        and type(value) is dict
        and all(type(v) in _SCALARS for k, v in value.items() if k != "input" and k != "cache_control")
    ):
        # Fast path (text, tool_use, thinking, string tool_result): same bytes as the general path.
        flat = {k: value[k] for k in sorted(value) if k != "cache_control"}
        return _ENCODER.encode(flat).encode()
    data = _canon(value, False) if not sort_all else _sorted(value)
    return _ENCODER.encode(data).encode()


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _sorted(value[k]) for k in sorted(value, key=str) if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


def _str_mass(text: str) -> int:
    """Non-whitespace bytes of ``text``; long texts (a system prompt sent on every call) are memoised."""
    if len(text) >= _MASS_MEMO_MIN_CHARS:
        return _long_str_mass(text)
    squeezed = "".join(text.split())
    return len(squeezed) if squeezed.isascii() else len(squeezed.encode())


_MASS_MEMO_MIN_CHARS = 2048


@functools.lru_cache(maxsize=512)
def _long_str_mass(text: str) -> int:
    squeezed = "".join(text.split())
    return len(squeezed) if squeezed.isascii() else len(squeezed.encode())


def _text_mass(value: Any, key: str | None = None) -> int:
    """Non-whitespace bytes of the text in ``value``, skipping binary payloads (``source.data``)."""
    if isinstance(value, str):
        if key in _BINARY_KEYS:
            return 0
        return _str_mass(value)
    if isinstance(value, dict | Mapping):
        kind = value.get("type")
        if kind == "base64" or kind == "url" or kind == "file":
            return 0
        total = 0
        for k, v in value.items():
            if type(v) is str:
                if k not in _BINARY_KEYS:
                    total += _str_mass(v)
            elif k != "cache_control" and v is not None and type(v) is not bool:
                total += _text_mass(v, k)
        return total
    if isinstance(value, list | tuple):
        return sum(_text_mass(v, key) for v in value)
    return 0


def _ttl_of(marker: Any) -> Ttl:
    if isinstance(marker, Mapping) and marker.get("ttl") == "1h":
        return "1h"
    return "5m"  # a marker without ttl counts as 5m (docs/api-notes.md §1.4)


@dataclass(frozen=True, slots=True)
class Marker:
    """A ``cache_control`` marker already in the request (the caller's)."""

    path: str
    position: int
    ttl: Ttl
    nested: bool = False


@dataclass(frozen=True, slots=True)
class Position:
    """One cache position; ``path`` is the block a marker for it goes on (the last block of a run).

    ``inside_run`` is true only without ``collapse_runs``, for a ``tool_use`` / ``tool_result``
    block followed by another of its type in the same message (not the end of its run).
    """

    index: int
    level: Level
    path: str
    kind: str
    message: int | None
    block: int | None
    role: str | None
    markable: bool
    why_not: str | None
    nbytes: int
    text_bytes: int
    prefix_hash: str
    message_end: bool = False
    inside_run: bool = False

    @property
    def plannable(self) -> bool:
        """The planner may put a marker here: markable, and at the end of its run (if in one)."""
        return self.markable and not self.inside_run


def _salt_system(body: Mapping[str, Any]) -> bytes:
    tools = body.get("tools") or []
    web = any(isinstance(t, Mapping) and str(t.get("type", "")).startswith("web_search") for t in tools)
    citations = False
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, Mapping) and block.get("type") == "document":
                cit = block.get("citations")
                citations = citations or bool(isinstance(cit, Mapping) and cit.get("enabled"))
    return canonical_json(
        {"speed": body.get("speed") or "standard", "web_search": web, "citations": citations}
    )


def _images(value: Any) -> int:
    if isinstance(value, Mapping):
        if value.get("type") == "image":
            return 1
        return sum(_images(v) for k, v in value.items() if k in ("content", "source"))
    if isinstance(value, list):
        return sum(_images(v) for v in value)
    return 0


def _salt_messages(body: Mapping[str, Any]) -> bytes:
    choice = body.get("tool_choice")
    choice_map = dict(choice) if isinstance(choice, Mapping) else {"type": "auto"}
    parallel_off = bool(choice_map.pop("disable_parallel_tool_use", False))
    thinking = body.get("thinking")
    mode: Any = "disabled"
    if isinstance(thinking, Mapping):
        kind = thinking.get("type", "disabled")
        mode = [kind, thinking.get("budget_tokens")] if kind == "enabled" else kind
    output = body.get("output_config")
    effort = output.get("effort") if isinstance(output, Mapping) else None
    # "Adding/removing images anywhere in the prompt" invalidates messages, a second image too:
    # the salt holds the count (encoded as before for 0 and 1 image, so those hashes are unchanged).
    count = sum(_images(m.get("content")) for m in body.get("messages") or [] if isinstance(m, Mapping))
    images: bool | int = count if count > 1 else bool(count)
    return canonical_json(
        {
            "tool_choice": choice_map,
            "disable_parallel_tool_use": parallel_off,
            "images": images,
            "thinking": mode,
            "effort": effort or "high",
        }
    )


def _block_markable(block: Mapping[str, Any]) -> str | None:
    kind = block.get("type")
    if not isinstance(kind, str):
        return "block has no type"
    if kind in _UNMARKABLE:
        return _UNMARKABLE[kind]
    if kind == "text" and not str(block.get("text") or "").strip():
        return "empty text blocks cannot carry cache_control"
    return None


def _system_markable(block: Any) -> str | None:
    if not isinstance(block, Mapping):
        return "a system entry must be a text block object"
    if block.get("type") != "text":
        return "system blocks must be text blocks"
    return _block_markable(block)


class Prompt:
    """A request read as cache positions. Never mutates the body it reads."""

    __slots__ = (
        "_cum_bytes",
        "_cum_text",
        "auto",
        "body",
        "family",
        "level_ends",
        "markers",
        "model",
        "positions",
    )

    def __init__(self, body: Mapping[str, Any], *, collapse_runs: bool = True) -> None:
        if not isinstance(body, Mapping):
            raise TypeError(f"a Messages request body is a dict, got {type(body).__name__}")
        self.body = body
        self.model = str(body.get("model") or "")
        auto = body.get("cache_control")
        self.auto: Ttl | None = _ttl_of(auto) if isinstance(auto, Mapping) else None
        positions: list[Position] = []
        markers: list[Marker] = []
        state = hashlib.sha256(_HASH_VERSION + self.model.encode()).digest()
        cum_b: list[int] = []
        cum_t: list[int] = []
        total_b = total_t = 0

        def add(
            level: Level,
            path: str,
            kind: str,
            data: bytes,
            mass: int,
            *,
            message: int | None = None,
            block: int | None = None,
            role: str | None = None,
            why_not: str | None = None,
            inside_run: bool = False,
        ) -> None:
            nonlocal state, total_b, total_t
            state = hashlib.sha256(state + data).digest()
            total_b += len(data)
            total_t += mass
            cum_b.append(total_b)
            cum_t.append(total_t)
            positions.append(
                Position(
                    index=len(positions),
                    level=level,
                    path=path,
                    kind=kind,
                    message=message,
                    block=block,
                    role=role,
                    markable=why_not is None,
                    why_not=why_not,
                    nbytes=len(data),
                    text_bytes=mass,
                    prefix_hash=state.hex(),
                    inside_run=inside_run,
                )
            )

        def mark(path: str, value: Any, nested: bool = False) -> None:
            if isinstance(value, Mapping):
                markers.append(Marker(path, len(positions), _ttl_of(value), nested))

        def mark_inner(path: str, inner: Any) -> None:
            """Markers inside ``tool_result.content`` / ``document.source.content`` (nested)."""
            for n, item in enumerate(inner if isinstance(inner, list) else []):
                if isinstance(item, Mapping):
                    mark(f"{path}.{n}", item.get("cache_control"), True)

        level_ends: dict[Level, int] = {}
        for i, tool in enumerate(body.get("tools") or []):
            if isinstance(tool, Mapping):
                mark(f"tools.{i}", tool.get("cache_control"))
            add("tools", f"tools.{i}", "tool", canonical_json(tool), _text_mass(tool))
        if positions:
            level_ends["tools"] = len(positions) - 1

        state = hashlib.sha256(state + b"\x00system\x00" + _salt_system(body)).digest()
        system = body.get("system")
        start = len(positions)
        if isinstance(system, str):
            if system:
                block = {"type": "text", "text": system}
                add(
                    "system",
                    "system",
                    "text",
                    canonical_json(block),
                    _text_mass(system),
                    why_not=_block_markable(block),
                )
        elif isinstance(system, list):
            for j, raw in enumerate(system):
                sblock: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {"type": "?", "value": raw}
                mark(f"system.{j}", sblock.get("cache_control"))
                add(
                    "system",
                    f"system.{j}",
                    str(sblock.get("type")),
                    canonical_json(sblock),
                    _text_mass(sblock),
                    why_not=_system_markable(raw),
                )
        if len(positions) > start:
            level_ends["system"] = len(positions) - 1
        family_index = len(positions) - 1
        self.family = positions[family_index].prefix_hash if positions else state.hex()

        state = hashlib.sha256(state + b"\x00messages\x00" + _salt_messages(body)).digest()
        for m, message in enumerate(body.get("messages") or []):
            if not isinstance(message, Mapping):
                continue
            role = str(message.get("role"))
            head = _HEADS.get(role) or canonical_json({"role": role, "message": True})
            content = message.get("content")
            first_in_message = len(positions)
            if isinstance(content, str):
                block = {"type": "text", "text": content}
                add(
                    "messages",
                    f"messages.{m}.content",
                    "text",
                    head + canonical_json(block),
                    _text_mass(content),
                    message=m,
                    role=role,
                    why_not=_block_markable(block),
                )
            elif isinstance(content, list):
                j = 0
                while j < len(content):
                    raw = content[j]
                    first = raw if isinstance(raw, Mapping) else {"type": "?", "value": raw}
                    kind = str(first.get("type"))
                    end = j + 1
                    if collapse_runs and kind in _RUN_TYPES:
                        while (
                            end < len(content)
                            and isinstance(content[end], Mapping)
                            and content[end].get("type") == kind
                        ):
                            end += 1
                    data = head if j == 0 else b""
                    mass = 0
                    for k in range(j, end):
                        sub = content[k] if isinstance(content[k], Mapping) else {"type": "?"}
                        data += canonical_json(sub)
                        mass += _text_mass(sub)
                        mark(f"messages.{m}.content.{k}", sub.get("cache_control"))
                        if sub.get("type") == "tool_result":
                            mark_inner(f"messages.{m}.content.{k}.content", sub.get("content"))
                        source = sub.get("source")
                        if sub.get("type") == "document" and isinstance(source, Mapping):
                            mark_inner(f"messages.{m}.content.{k}.source.content", source.get("content"))
                    last = content[end - 1]
                    why = _block_markable(last) if isinstance(last, Mapping) else "block is not an object"
                    inside = (
                        not collapse_runs
                        and kind in _RUN_TYPES
                        and end < len(content)
                        and isinstance(content[end], Mapping)
                        and content[end].get("type") == kind
                    )
                    add(
                        "messages",
                        f"messages.{m}.content.{end - 1}",
                        kind,
                        data,
                        mass,
                        message=m,
                        block=end - 1,
                        role=role,
                        why_not=why,
                        inside_run=inside,
                    )
                    j = end
            if len(positions) > first_in_message:
                end_pos = positions[-1]
                positions[-1] = _with_message_end(end_pos)
        if positions and positions[-1].level == "messages":
            level_ends["messages"] = len(positions) - 1
        # Each marker was recorded just before its owning position was added, so its index is right.
        self.markers = tuple(markers)
        self.positions: tuple[Position, ...] = tuple(positions)
        self._cum_bytes = cum_b
        self._cum_text = cum_t
        self.level_ends = level_ends

    # -- sizes -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.positions)

    def cum_bytes(self, index: int) -> int:
        """Canonical bytes of the prefix ending at ``index`` (inclusive)."""
        return self._cum_bytes[index] if index >= 0 else 0

    def cum_text(self, index: int) -> int:
        """Non-whitespace text bytes of the prefix ending at ``index`` (inclusive)."""
        return self._cum_text[index] if index >= 0 else 0

    def prefix_hash(self, index: int) -> str:
        return self.positions[index].prefix_hash

    def last_markable(self) -> int | None:
        for pos in reversed(self.positions):
            if pos.markable:
                return pos.index
        return None

    # -- the truncated request count_tokens sees ----------------------------------------------

    def truncated(self, index: int) -> tuple[dict[str, Any], bool]:
        """A valid request body ending at position ``index``, for ``count_tokens``.

        Returns ``(body, filler)``: ``filler`` is true when a placeholder user turn was
        appended (a tools/system prefix, a trailing assistant turn, or a dangling
        ``tool_use``); the caller subtracts a baseline for it. Markers are stripped,
        server tools (rejected by count_tokens, docs/api-notes.md §4.1) are left out, and a forced
        ``tool_choice`` (rejected on some models) is dropped: both only lower the count.
        """
        pos = self.positions[index]
        body = self.body
        out: dict[str, Any] = {"model": self.model}
        tools = body.get("tools") or []
        if pos.level == "tools":
            tools = tools[: index + 1]
        kept = [strip_cache_control(t) for t in tools if isinstance(t, Mapping) and _countable_tool(t)]
        if kept:
            out["tools"] = kept
        if pos.level != "tools":
            system = body.get("system")
            if pos.level == "system" and isinstance(system, list):
                offset = self.level_ends.get("tools", -1) + 1
                system = system[: index - offset + 1]
            if system:
                out["system"] = strip_cache_control(system)
        for key in ("thinking", "output_config", "speed"):
            if body.get(key) is not None:
                out[key] = strip_cache_control(body[key])
        choice = body.get("tool_choice")
        if isinstance(choice, Mapping) and choice.get("type") in ("auto", "none") and kept:
            out["tool_choice"] = dict(choice)
        filler = True
        messages: list[Any] = []
        if pos.level == "messages" and pos.message is not None:
            source = body.get("messages") or []
            messages = [strip_cache_control(m) for m in source[: pos.message]]
            current = source[pos.message]
            content = current.get("content")
            cut = content if isinstance(content, str) else content[: (pos.block or 0) + 1]
            last = {"role": current.get("role"), "content": strip_cache_control(cut)}
            messages.append(last)
            if last["role"] == "user":
                filler = False
            else:
                dangling = [
                    b.get("id")
                    for b in (cut if isinstance(cut, list) else [])
                    if isinstance(b, Mapping) and b.get("type") == "tool_use"
                ]
                if dangling:
                    messages.append(
                        {
                            "role": "user",
                            "content": [
                                {"type": "tool_result", "tool_use_id": tid, "content": "."}
                                for tid in dangling
                            ],
                        }
                    )
                else:
                    messages.append(FILLER_MESSAGE)
        else:
            messages = [FILLER_MESSAGE]
        out["messages"] = messages
        return out, filler

    def baseline_body(self) -> dict[str, Any]:
        """The filler turn alone: its count is subtracted from filler-padded prefix counts."""
        return {"model": self.model, "messages": [FILLER_MESSAGE]}


FILLER_MESSAGE: dict[str, Any] = {"role": "user", "content": "."}

_SERVER_TOOL_PREFIXES = COUNT_TOKENS_REFUSED_TOOL_PREFIXES


def _countable_tool(tool: Mapping[str, Any]) -> bool:
    kind = str(tool.get("type") or "custom")
    return not kind.startswith(_SERVER_TOOL_PREFIXES)


def _with_message_end(pos: Position) -> Position:
    return replace(pos, message_end=True)
