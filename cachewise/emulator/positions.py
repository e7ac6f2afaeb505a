"""A request as ordered cache positions with prefix hashes, token counts and markers.

This is the emulator's own reading of the prompt-caching docs (docs/emulator.md); the
planner has an independent one in ``cachewise/prompt.py``, and the emulator is the oracle
it is tested against (``tests/emulator/test_differential.py``).

* Prefix order is ``tools`` → ``system`` → ``messages``.
* One position per tool, per system text block (a string system is one), per
  message content block (a string content is one); a run of consecutive
  ``tool_use`` blocks in a message is one position, and so is a run of
  ``tool_result`` blocks (the Claude API run rule).
* The prefix hash is a running SHA-256 seeded with the model; each level is salted
  with the settings that invalidate it (the docs' invalidation table), so a change at one level
  changes the hash of that level and every later one.
* ``cache_control`` is read from blocks (and moved up from the last block inside a
  ``tool_result``/``document``), the top-level marker is placed on the last eligible
  position, and the limits are checked with their exact errors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..api_rules import MAX_MARKERS, RUN_BLOCK_TYPES, UNMARKABLE_BLOCK_TYPES, Ttl
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
    "DEFAULT_RUN_MARKERS",
    "MAX_MARKERS",
    "MESSAGE_OVERHEAD",
    "RUN_MARKERS",
    "TAIL_OVERHEAD",
    "TOOL_OVERHEAD",
    "Cut",
    "Layout",
    "RunMarkers",
    "ServerMarker",
    "ServerPosition",
    "layout",
]

# Per-block overheads (documented in docs/emulator.md).
TOOL_OVERHEAD = 8  # each tool definition: 8 + tokens of its JSON (cache_control removed)
BLOCK_OVERHEAD = 3  # each system text block and each message content block
MESSAGE_OVERHEAD = 4  # each message (role header), counted in its first position
TAIL_OVERHEAD = 3  # the assistant turn header after the prompt; never cached

_UNMARKABLE = UNMARKABLE_BLOCK_TYPES
_RUN_TYPES = RUN_BLOCK_TYPES


@dataclass(frozen=True, slots=True)
class ServerMarker:
    """One ``cache_control`` marker as the server applies it: TTL, block path, whether automatic.

    Named apart from :class:`cachewise.prompt.Marker` (the planner's record of a caller's
    marker): the emulator keeps its own reading of the request, to be the planner's oracle.
    """

    ttl: Ttl
    path: str
    auto: bool = False


RunMarkers = Literal["block", "run_end"]
RUN_MARKERS: tuple[RunMarkers, ...] = ("block", "run_end")
DEFAULT_RUN_MARKERS: RunMarkers = "block"


@dataclass(slots=True, kw_only=True)
class _Prefix:
    """A prefix that ends somewhere: its tokens (``end``), its hash, the markers on its end."""

    end: int = 0
    digest: bytes = b""
    markers: list[ServerMarker] = field(default_factory=list)
    eligible: bool = True

    @property
    def ttl(self) -> Ttl | None:
        """The TTL it writes with: 1h if any of its markers says 1h, else 5m; None if unmarked."""
        if not self.markers:
            return None
        return "1h" if any(m.ttl == "1h" for m in self.markers) else "5m"


@dataclass(slots=True)
class Cut(_Prefix):
    """A place a cached prefix can end: one block, or (``run_end``) one whole position.

    With ``run_markers="block"`` every block of a ``tool_use``/``tool_result`` run is a cut
    of its own (a marker writes the prefix ending at its block); with ``"run_end"`` a run
    is a single cut and its markers take effect at its end. ``position`` is the index of
    the position the cut belongs to: the lookback counts positions, not cuts.
    """

    seq: int
    position: int
    path: str


@dataclass(slots=True)
class _Part:
    """One block of a position, before hashing: its path, tokens, bytes, markers."""

    path: str
    tokens: int
    data: bytes
    markers: list[ServerMarker]
    eligible: bool


@dataclass(slots=True)
class ServerPosition(_Prefix):
    """One cache position as the server bills it: its tokens, the prefix up to it, its markers.

    The planner's view of the same request is :class:`cachewise.prompt.Position` (byte
    bounds, markability); ``tests/emulator/test_differential.py`` checks that the two agree
    on paths and on prefix equality.
    """

    index: int
    level: Literal["tools", "system", "messages"]
    path: str
    tokens: int


@dataclass(frozen=True, slots=True)
class Layout:
    """A validated request: positions in prefix order, and the total input tokens."""

    model: str
    positions: tuple[ServerPosition, ...]
    total_tokens: int
    marker_count: int
    cuts: tuple[Cut, ...] = ()
    run_markers: RunMarkers = DEFAULT_RUN_MARKERS

    @property
    def marked(self) -> list[ServerPosition]:
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


# JSON the model reads as written: a tool_use's input, a tool's input_schema.
_VERBATIM_KEYS = frozenset({"input", "input_schema"})


def _rendered(value: Any, verbatim: bool = False) -> Any:
    """What the prompt holds of ``value``: no ``cache_control``, object keys in a fixed order.

    The cache key is "a cryptographic hash of the prompts up to the cache control point" and
    a hit needs "100% identical prompt segments, including all text and images"
    (prompt-caching docs). The envelope of a block (``{"type", "text", ...}``) is parsed,
    not rendered, so its key order is not part of the prompt; the JSON inside a
    ``tool_use`` input or a tool's ``input_schema`` is, which is why the docs warn that
    "some languages (for example, Swift, Go) randomize key order during JSON conversion,
    breaking caches". ``cache_control`` is never part of the prompt (it may sit on a
    block, or on the last block inside ``tool_result.content`` or ``document.source.content``).
    """
    if isinstance(value, Mapping):
        keys = list(value) if verbatim else sorted(value, key=str)
        return {
            str(k): _rendered(value[k], verbatim or k in _VERBATIM_KEYS)
            for k in keys
            if verbatim or k != "cache_control"
        }
    if isinstance(value, list):
        return [_rendered(v, verbatim) for v in value]
    return value


def _canonical(value: Any) -> bytes:
    return json.dumps(_rendered(value), separators=(",", ":"), ensure_ascii=False).encode()


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


def _block_markers(block: Mapping[str, Any], path: str) -> list[ServerMarker]:
    """The markers a block carries, with the inner-marker parent rule (release notes, 2025-05-01)."""
    kind = block.get("type")
    found: list[ServerMarker] = []
    if block.get("cache_control") is not None:
        if kind in _UNMARKABLE:
            # Thinking blocks "cannot be cached directly" (docs); the wording is unknown, this text is ours.
            raise invalid(f"{path}.cache_control: cache_control cannot be set for {kind} blocks")
        if kind == "text" and block.get("text") == "":
            raise empty_text_marker(path)
        found.append(ServerMarker(_ttl(block["cache_control"], path), path))
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
                # Only the last inner block's marker is moved to the parent (2025-05-01); text ours.
                raise invalid(
                    f"{inner_path}.{k}.cache_control: cache_control is only allowed on the last block "
                    "of nested content; put it on the parent block"
                )
            if sub.get("type") == "text" and sub.get("text") == "":
                raise empty_text_marker(f"{inner_path}.{k}")
            if not found:
                found.append(ServerMarker(_ttl(sub["cache_control"], f"{inner_path}.{k}"), path))
    return found


def _eligible(block: Mapping[str, Any]) -> bool:
    kind = block.get("type")
    if kind in _UNMARKABLE:
        return False
    return not (kind == "text" and not block.get("text"))


# -- salts ------------------------------------------------------------------------------------
#
# Derived from the table "What invalidates the cache" of the prompt-caching docs
# (docs/emulator.md, "Caching rules implemented"): "Changes at each level invalidate that
# level and all subsequent levels." Tool definitions are the tools level itself. The web
# search toggle, the citations toggle and the speed setting invalidate system and messages
# ("modifies the system prompt"); tool choice, "Adding/removing images anywhere in the
# prompt", ``disable_parallel_tool_use`` (the tool-use-with-caching page), the thinking
# parameters ("mode, and budget_tokens in extended mode"; their effect on tools and system
# is model-specific, and not emulated) and ``output_config.effort`` invalidate messages.
# Adding or removing an image changes the image count, so the salt holds the count: a
# second image is an image added. Values equal to the defaults are the same as omitting
# them ("Setting effort explicitly to the model's default is equivalent to omitting it").


def _images(value: Any) -> int:
    """Image blocks in a message's content, at any depth (``tool_result`` and document content)."""
    if isinstance(value, Mapping):
        if value.get("type") == "image":
            return 1
        return sum(_images(value[key]) for key in ("content", "source") if key in value)
    if isinstance(value, list):
        return sum(_images(item) for item in value)
    return 0


def _count_images(body: Mapping[str, Any]) -> int:
    messages = body.get("messages") or []
    return sum(_images(m.get("content")) for m in messages if isinstance(m, Mapping))


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

    Values equal to the defaults are the same as omitting them: no ``tool_choice`` =
    ``auto``; no ``thinking`` = ``disabled``; no effort = ``high``.
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


def _raw_positions(body: Mapping[str, Any]) -> list[tuple[ServerPosition, list[_Part]]]:
    """Positions with their blocks' canonical bytes (level salts are added by the caller)."""
    out: list[tuple[ServerPosition, list[_Part]]] = []

    def add(
        level: Literal["tools", "system", "messages"],
        path: str,
        tokens: int,
        data: bytes,
        markers: list[ServerMarker],
        eligible: bool,
    ) -> None:
        part = _Part(path, tokens, data, list(markers), eligible)
        out.append(
            (ServerPosition(len(out), level, path, tokens, markers=markers, eligible=eligible), [part])
        )

    tools = body.get("tools")
    if tools is not None:
        for i, tool in enumerate(_require_list(tools, "tools")):
            path = f"tools.{i}"
            if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
                raise invalid(f"{path}.name: Field required")
            stripped = _strip(tool)
            tool_markers = (
                [ServerMarker(_ttl(tool["cache_control"], path), path)] if tool.get("cache_control") else []
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
                parts: list[_Part] = []
                for k in range(j, run_end):
                    sub_path = f"{mpath}.content.{k}"
                    sub = _require_block(blocks[k], sub_path)
                    data = (header if k == 0 else b"") + _canonical(_strip(sub))
                    parts.append(
                        _Part(
                            sub_path, _block_tokens(sub), data, _block_markers(sub, sub_path), _eligible(sub)
                        )
                    )
                position = ServerPosition(
                    len(out),
                    "messages",
                    parts[-1].path,  # a position is named by the block its prefix ends at
                    sum(part.tokens for part in parts),
                    markers=[m for part in parts for m in part.markers],
                    eligible=any(part.eligible for part in parts),
                )
                out.append((position, parts))
                j = run_end
        if len(out) == first:
            raise invalid(f"{mpath}.content: messages must have non-empty content")
        out[first][0].tokens += MESSAGE_OVERHEAD
        out[first][1][0].tokens += MESSAGE_OVERHEAD
    return out


def _per_block(parts: Sequence[_Part], run_markers: RunMarkers) -> bool:
    return run_markers == "block" and len(parts) > 1


def _cuts(raw: Sequence[tuple[ServerPosition, list[_Part]]], run_markers: RunMarkers) -> list[Cut]:
    """The cuts of a layout: one per block of a run (``block``), else one per position."""
    cuts: list[Cut] = []
    for position, parts in raw:
        ends: Sequence[ServerPosition | _Part] = parts if _per_block(parts, run_markers) else [position]
        for end in ends:
            cuts.append(
                Cut(len(cuts), position.index, end.path, markers=list(end.markers), eligible=end.eligible)
            )
    return cuts


def _last_eligible(cuts: Sequence[Cut]) -> Cut | None:
    # Walk back past thinking / empty blocks (the automatic-caching rules).
    return next((cut for cut in reversed(cuts) if cut.eligible), None)


def _place_auto(cuts: Sequence[Cut], positions: Sequence[ServerPosition], ttl: Ttl) -> bool:
    """Put the top-level marker on the last eligible cut; return whether it takes a slot."""
    cut = _last_eligible(cuts)
    if cut is None:
        return False  # nothing eligible: caching is skipped
    existing = cut.ttl
    if existing is not None:
        if existing != ttl:
            raise auto_ttl_conflict(cut.path, existing, ttl)
        return False  # same TTL already there: a no-op, no extra slot (inferred)
    marker = ServerMarker(ttl, cut.path, auto=True)
    cut.markers.append(marker)
    positions[cut.position].markers.append(marker)
    return True


def layout(body: Mapping[str, Any], model: str, *, run_markers: RunMarkers = DEFAULT_RUN_MARKERS) -> Layout:
    """Validate the cache-relevant parts of a Messages body and lay it out as positions.

    ``run_markers`` says where a marker inside a ``tool_use``/``tool_result`` run writes:
    at its own block (``"block"``) or at the end of the run (``"run_end"``); see
    docs/emulator.md, "Markers inside a run".
    """
    raw = _raw_positions(body)
    positions = [p for p, _ in raw]
    cuts = _cuts(raw, run_markers)
    explicit = sum(len(p.markers) for p in positions)
    auto = body.get("cache_control")
    takes_slot = False
    if auto is not None:
        auto_ttl = _ttl(auto, "")
        if explicit >= MAX_MARKERS and not _auto_is_noop(cuts, auto_ttl):
            raise too_many_markers(explicit + 1)
        takes_slot = _place_auto(cuts, positions, auto_ttl)
    count = explicit + (1 if takes_slot else 0)
    if count > MAX_MARKERS:
        raise too_many_markers(count)
    _check_ttl_order(cuts)

    hasher = hashlib.sha256(_canonical({"model": model}))
    level = ""
    salts = {"tools": b"", "system": system_salt(body), "messages": messages_salt(body)}
    total = 0
    seq = 0
    for position, parts in raw:
        if position.level != level:
            for name in ("tools", "system", "messages"):
                # Salt every level between the previous one and this one, so an empty level still counts.
                if _LEVELS[name] > _LEVELS.get(level, -1) and _LEVELS[name] <= _LEVELS[position.level]:
                    hasher.update(b"\x00level:" + name.encode() + b"\x00" + salts[name])
            level = position.level
        per_block = _per_block(parts, run_markers)
        for part in parts:
            hasher.update(part.data)
            total += part.tokens
            if per_block:
                cuts[seq].end, cuts[seq].digest = total, hasher.copy().digest()
                seq += 1
        position.end = total
        position.digest = hasher.copy().digest()
        if not per_block:
            cuts[seq].end, cuts[seq].digest = total, position.digest
            seq += 1
    return Layout(
        model=model,
        positions=tuple(positions),
        total_tokens=total + TAIL_OVERHEAD,
        marker_count=count,
        cuts=tuple(cuts),
        run_markers=run_markers,
    )


_LEVELS = {"tools": 0, "system": 1, "messages": 2}


def _auto_is_noop(cuts: Sequence[Cut], ttl: Ttl) -> bool:
    cut = _last_eligible(cuts)
    return cut is None or cut.ttl == ttl


def _check_ttl_order(cuts: Sequence[Cut]) -> None:
    """Every 1h marker must come before every 5m marker, in processing order (the TTL-mixing rule)."""
    seen_5m = False
    for cut in cuts:
        for marker in cut.markers:
            if marker.ttl == "5m":
                seen_5m = True
            elif seen_5m:
                raise ttl_order("" if marker.auto else marker.path)
