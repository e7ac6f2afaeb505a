"""A request as ordered cache positions with prefix hashes, token counts and markers.

This is the emulator's own reading of docs/api-notes.md §1 (the planner has an independent
one in ``cachewise/prompt.py``; the emulator is the oracle it is tested against).

* Prefix order is ``tools`` → ``system`` → ``messages`` (docs/api-notes.md §1.1).
* One position per tool, per system text block (a string system is one), per
  message content block (a string content is one); a run of consecutive
  ``tool_use`` blocks in a message is one position, and so is a run of
  ``tool_result`` blocks (the Claude API run rule, docs/api-notes.md §1.1).
* The prefix hash is a running SHA-256 seeded with the model; each level is salted
  with the settings that invalidate it (docs/api-notes.md §2.4), so a change at one level
  changes the hash of that level and every later one.
* ``cache_control`` is read from blocks (and moved up from the last block inside a
  ``tool_result``/``document``), the top-level marker is placed on the last eligible
  position, and the limits of docs/api-notes.md §1.3–1.4 are checked with their exact errors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import (
    auto_ttl_conflict,
    empty_text_marker,
    invalid,
    too_many_markers,
    ttl_order,
)
from .tokenizer import count_json, count_payload, count_text

__all__ = [
    "BLOCK_OVERHEAD",
    "MAX_MARKERS",
    "MESSAGE_OVERHEAD",
    "TAIL_OVERHEAD",
    "TOOL_OVERHEAD",
    "Layout",
    "Marker",
    "Position",
    "layout",
]

Ttl = Literal["5m", "1h"]

# Per-block overheads (documented in docs/emulator.md).
TOOL_OVERHEAD = 8  # each tool definition: 8 + tokens of its JSON (cache_control removed)
BLOCK_OVERHEAD = 3  # each system text block and each message content block
MESSAGE_OVERHEAD = 4  # each message (role header), counted in its first position
TAIL_OVERHEAD = 3  # the assistant turn header after the prompt; never cached
MAX_MARKERS = 4

_UNMARKABLE = frozenset({"thinking", "redacted_thinking"})
_RUN_TYPES = frozenset({"tool_use", "tool_result"})


@dataclass(frozen=True, slots=True)
class Marker:
    """One ``cache_control`` marker: its TTL, the block path it sits on, and whether it is automatic."""

    ttl: Ttl
    path: str
    auto: bool = False


@dataclass(slots=True)
class Position:
    """One cache position: its tokens, the cumulative prefix up to it, and its markers."""

    index: int
    level: Literal["tools", "system", "messages"]
    path: str
    tokens: int
    end: int = 0
    digest: bytes = b""
    markers: list[Marker] = field(default_factory=list)
    eligible: bool = True

    @property
    def ttl(self) -> Ttl | None:
        """The TTL this position writes with: 1h if any marker on it says 1h (run merges), else 5m."""
        if not self.markers:
            return None
        return "1h" if any(m.ttl == "1h" for m in self.markers) else "5m"


@dataclass(frozen=True, slots=True)
class Layout:
    """A validated request: positions in prefix order, and the total input tokens."""

    model: str
    positions: tuple[Position, ...]
    total_tokens: int
    marker_count: int

    @property
    def marked(self) -> list[Position]:
        return [p for p in self.positions if p.markers]


# -- reading blocks ---------------------------------------------------------------------------


def _ttl(value: Any, path: str) -> Ttl:
    where = f"{path}.cache_control" if path else "cache_control"
    if not isinstance(value, Mapping) or value.get("type") != "ephemeral":
        raise invalid(f"{where}.type: Input should be 'ephemeral'")
    ttl = value.get("ttl", "5m")
    if ttl is None:
        ttl = "5m"
    if ttl not in ("5m", "1h"):
        raise invalid(f"{where}.ttl: Input should be '5m' or '1h'")
    return "1h" if ttl == "1h" else "5m"


def _strip(block: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in block.items() if k != "cache_control"}
    content = out.get("content")
    if isinstance(content, list):
        out["content"] = [
            {k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, Mapping) else b
            for b in content
        ]
    return out


def _canonical(value: Any) -> bytes:
    # Key order is kept: the API hashes bytes, and reordered tool_use input misses (docs/api-notes.md §2.4).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _inner_tokens(content: Any) -> int:
    if isinstance(content, str):
        return count_text(content)
    total = 0
    if isinstance(content, list):
        for inner in content:
            if not isinstance(inner, Mapping):
                continue
            kind = inner.get("type")
            if kind == "text":
                total += count_text(str(inner.get("text", "")))
            elif kind in ("image", "document"):
                total += _source_tokens(inner.get("source"))
            else:
                total += count_json(_strip(inner))
    return total


def _source_tokens(source: Any) -> int:
    if not isinstance(source, Mapping):
        return 1
    kind = source.get("type")
    if kind == "text":
        return count_text(str(source.get("data", "")))
    if kind == "content":
        return _inner_tokens(source.get("content"))
    return count_payload(str(source.get("data") or source.get("url") or source.get("file_id") or ""))


def _block_tokens(block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        body = count_text(str(block.get("text", "")))
    elif kind == "thinking":
        body = count_text(str(block.get("thinking", "")))
    elif kind == "redacted_thinking":
        body = count_payload(str(block.get("data", "")))
    elif kind == "tool_use" or kind == "server_tool_use":
        body = count_text(str(block.get("name", ""))) + count_json(block.get("input", {}))
    elif kind == "tool_result":
        body = _inner_tokens(block.get("content", ""))
    elif kind == "image":
        body = _source_tokens(block.get("source"))
    elif kind == "document":
        body = _source_tokens(block.get("source"))
        body += count_text(str(block.get("title") or "")) + count_text(str(block.get("context") or ""))
    else:
        body = count_json(_strip(block))
    return BLOCK_OVERHEAD + body


def _block_markers(block: Mapping[str, Any], path: str) -> list[Marker]:
    """The markers a block carries, with the inner-marker parent rule (docs/api-notes.md §1.2)."""
    kind = block.get("type")
    found: list[Marker] = []
    if block.get("cache_control") is not None:
        if kind in _UNMARKABLE:
            # Not allowed per docs/api-notes.md §1.2; the API's wording is unknown, this text is ours.
            raise invalid(f"{path}.cache_control: cache_control cannot be set for {kind} blocks")
        if kind == "text" and block.get("text") == "":
            raise empty_text_marker(path)
        found.append(Marker(_ttl(block["cache_control"], path), path))
    inner_lists: list[tuple[str, Any]] = []
    if kind == "tool_result":
        inner_lists.append((f"{path}.content", block.get("content")))
    if kind == "document" and isinstance(block.get("source"), Mapping):
        inner_lists.append((f"{path}.source.content", block["source"].get("content")))
    for inner_path, inner in inner_lists:
        if not isinstance(inner, list):
            continue
        for k, sub in enumerate(inner):
            if not isinstance(sub, Mapping) or sub.get("cache_control") is None:
                continue
            if k != len(inner) - 1:
                # Only the last inner block's marker moves to the parent (docs/api-notes.md §1.2); text ours.
                raise invalid(
                    f"{inner_path}.{k}.cache_control: cache_control is only allowed on the last block "
                    "of nested content; put it on the parent block"
                )
            if sub.get("type") == "text" and sub.get("text") == "":
                raise empty_text_marker(f"{inner_path}.{k}")
            if not found:
                found.append(Marker(_ttl(sub["cache_control"], f"{inner_path}.{k}"), path))
    return found


def _eligible(block: Mapping[str, Any]) -> bool:
    kind = block.get("type")
    if kind in _UNMARKABLE:
        return False
    return not (kind == "text" and not block.get("text"))


# -- salts (docs/api-notes.md §2.4) ------------------------------------------------------------------


def _count_images(body: Mapping[str, Any]) -> int:
    count = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "image":
                count += 1
            elif block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                count += sum(
                    1 for b in block["content"] if isinstance(b, Mapping) and b.get("type") == "image"
                )
    return count


def _citations_on(body: Mapping[str, Any]) -> bool:
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, Mapping) and block.get("type") == "document":
                    citations = block.get("citations")
                    if isinstance(citations, Mapping) and citations.get("enabled"):
                        return True
    return False


def system_salt(body: Mapping[str, Any]) -> bytes:
    """Settings that invalidate system and messages: speed, web search, citations."""
    tools = body.get("tools") or []
    web_search = any(
        isinstance(t, Mapping) and str(t.get("type", "")).startswith("web_search") for t in tools
    )
    return _canonical(
        {
            "speed": body.get("speed") or "standard",
            "web_search": web_search,
            "citations": _citations_on(body),
        }
    )


def messages_salt(body: Mapping[str, Any]) -> bytes:
    """Settings that invalidate messages only: tool_choice, images, parallel tool use, thinking, effort.

    Values equal to the defaults are the same as omitting them (docs/api-notes.md §2.4): no
    ``tool_choice`` = ``auto``; no ``thinking`` = ``disabled``; no effort = ``high``.
    """
    choice = body.get("tool_choice")
    choice_map = dict(choice) if isinstance(choice, Mapping) else {"type": "auto"}
    parallel_off = bool(choice_map.pop("disable_parallel_tool_use", False))
    thinking = body.get("thinking")
    mode: Any = "disabled"
    if isinstance(thinking, Mapping):
        kind = thinking.get("type", "disabled")
        mode = [kind, thinking.get("budget_tokens")] if kind == "enabled" else kind
    output_config = body.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, Mapping) else None
    return _canonical(
        {
            "tool_choice": choice_map,
            "disable_parallel_tool_use": parallel_off,
            "images": _count_images(body),
            "thinking": mode,
            "effort": effort or "high",
        }
    )


# -- the layout ------------------------------------------------------------------------------


def _require_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(f"{path}: Input should be a valid list")
    return value


def _require_block(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        raise invalid(f"{path}: Input should be a content block object with a 'type'")
    return value


def _raw_positions(body: Mapping[str, Any]) -> list[tuple[Position, bytes]]:
    """Positions with their own canonical bytes (level salts are added by the caller)."""
    out: list[tuple[Position, bytes]] = []

    def add(
        level: Literal["tools", "system", "messages"],
        path: str,
        tokens: int,
        data: bytes,
        markers: list[Marker],
        eligible: bool,
    ) -> None:
        out.append((Position(len(out), level, path, tokens, markers=markers, eligible=eligible), data))

    tools = body.get("tools")
    if tools is not None:
        for i, tool in enumerate(_require_list(tools, "tools")):
            path = f"tools.{i}"
            if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
                raise invalid(f"{path}.name: Field required")
            stripped = _strip(tool)
            tool_markers = (
                [Marker(_ttl(tool["cache_control"], path), path)] if tool.get("cache_control") else []
            )
            add("tools", path, TOOL_OVERHEAD + count_json(stripped), _canonical(stripped), tool_markers, True)

    system = body.get("system")
    if isinstance(system, str):
        if system:
            block: Mapping[str, Any] = {"type": "text", "text": system}
            add("system", "system", BLOCK_OVERHEAD + count_text(system), _canonical(block), [], True)
    elif system is not None:
        for j, raw in enumerate(_require_list(system, "system")):
            path = f"system.{j}"
            block = _require_block(raw, path)
            if block.get("type") != "text":
                raise invalid(f"{path}.type: Input should be 'text'")
            add(
                "system",
                path,
                _block_tokens(block),
                _canonical(_strip(block)),
                _block_markers(block, path),
                _eligible(block),
            )

    messages = _require_list(body.get("messages"), "messages")
    for i, message in enumerate(messages):
        mpath = f"messages.{i}"
        if not isinstance(message, Mapping):
            raise invalid(f"{mpath}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            raise invalid(f"{mpath}.role: Input should be 'user', 'assistant' or 'system'")
        content = message.get("content")
        header = _canonical({"role": role})
        first = len(out)
        if isinstance(content, str):
            block = {"type": "text", "text": content}
            add(
                "messages",
                f"{mpath}.content",
                BLOCK_OVERHEAD + count_text(content),
                header + _canonical(block),
                [],
                bool(content),
            )
        else:
            blocks = _require_list(content, f"{mpath}.content")
            j = 0
            while j < len(blocks):
                path = f"{mpath}.content.{j}"
                block = _require_block(blocks[j], path)
                kind = block["type"]
                run_end = j + 1
                if kind in _RUN_TYPES:
                    while (
                        run_end < len(blocks)
                        and isinstance(blocks[run_end], Mapping)
                        and blocks[run_end].get("type") == kind
                    ):
                        run_end += 1
                tokens = 0
                data = header if j == 0 else b""
                markers: list[Marker] = []
                eligible = False
                for k in range(j, run_end):
                    sub = _require_block(blocks[k], f"{mpath}.content.{k}")
                    tokens += _block_tokens(sub)
                    data += _canonical(_strip(sub))
                    markers.extend(_block_markers(sub, f"{mpath}.content.{k}"))
                    eligible = eligible or _eligible(sub)
                add("messages", path, tokens, data, markers, eligible)
                j = run_end
        if len(out) == first:
            raise invalid(f"{mpath}.content: messages must have non-empty content")
        out[first][0].tokens += MESSAGE_OVERHEAD
    return out


def _place_auto(positions: Sequence[Position], ttl: Ttl) -> bool:
    """Put the top-level marker on the last eligible position; return whether it takes a slot."""
    for position in reversed(positions):
        if not position.eligible:
            continue  # walk back past thinking / empty blocks (docs/api-notes.md §1.3)
        existing = position.ttl
        if existing is not None:
            if existing != ttl:
                raise auto_ttl_conflict(position.path, existing, ttl)
            return False  # same TTL already there: a no-op, no extra slot (docs/api-notes.md §1.3, inferred)
        position.markers.append(Marker(ttl, position.path, auto=True))
        return True
    return False  # nothing eligible: caching is skipped


def layout(body: Mapping[str, Any], model: str) -> Layout:
    """Validate the cache-relevant parts of a Messages body and lay it out as positions."""
    raw = _raw_positions(body)
    positions = [p for p, _ in raw]
    explicit = sum(len(p.markers) for p in positions)
    auto = body.get("cache_control")
    takes_slot = False
    if auto is not None:
        auto_ttl = _ttl(auto, "")
        if explicit >= MAX_MARKERS and not _auto_is_noop(positions, auto_ttl):
            raise too_many_markers(explicit + 1)
        takes_slot = _place_auto(positions, auto_ttl)
    count = explicit + (1 if takes_slot else 0)
    if count > MAX_MARKERS:
        raise too_many_markers(count)
    _check_ttl_order(positions)

    hasher = hashlib.sha256(_canonical({"model": model}))
    level = ""
    salts = {"tools": b"", "system": system_salt(body), "messages": messages_salt(body)}
    total = 0
    for position, data in raw:
        if position.level != level:
            for name in ("tools", "system", "messages"):
                # Salt every level between the previous one and this one, so an empty level still counts.
                if _LEVELS[name] > _LEVELS.get(level, -1) and _LEVELS[name] <= _LEVELS[position.level]:
                    hasher.update(b"\x00level:" + name.encode() + b"\x00" + salts[name])
            level = position.level
        hasher.update(data)
        total += position.tokens
        position.end = total
        position.digest = hasher.copy().digest()
    return Layout(
        model=model, positions=tuple(positions), total_tokens=total + TAIL_OVERHEAD, marker_count=count
    )


_LEVELS = {"tools": 0, "system": 1, "messages": 2}


def _auto_is_noop(positions: Sequence[Position], ttl: Ttl) -> bool:
    for position in reversed(positions):
        if position.eligible:
            return position.ttl == ttl
    return True


def _check_ttl_order(positions: Sequence[Position]) -> None:
    """Every 1h marker must come before every 5m marker, in processing order (docs/api-notes.md §1.4)."""
    seen_5m = False
    for position in positions:
        for marker in position.markers:
            if marker.ttl == "5m":
                seen_5m = True
            elif seen_5m:
                raise ttl_order("" if marker.auto else marker.path)
