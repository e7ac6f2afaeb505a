"""The planned body: a copy of the request with the planner's markers, and a deep copy where one is needed.

The plan's body (:func:`planned_body`) copies only what it changes: the top-level dict, the
``tools`` / ``system`` / ``messages`` lists, and on the path to each marked block the message,
its content list and the block. Everything else is shared with the caller's request, which
neither the planner nor the plan ever mutates (a deep copy of a 1,000-block body cost about one
``json.dumps`` of it, per request).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..prompt import Position, Ttl

__all__ = ["copy_body", "planned_body", "set_marker"]


_LEAVES = frozenset({str, int, float, bool, type(None)})
_FAST_DEPTH = 64  # deeper than this, the iterative copy takes over (no depth makes it fail)


def copy_body(value: Any) -> Any:
    """A deep copy of a JSON-like body: every mapping a new dict, every list or tuple a new list.

    No nesting depth makes it fail; leaves (str, numbers, other objects) are shared. Plain
    dicts and lists (a parsed JSON body) are copied by a recursive fast path down to a depth
    of 64, below which (and for other mappings and sequences) an iterative copy takes over.
    """
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        return _fast_copy(value, _FAST_DEPTH)
    return _iterative_copy(value)


def _fast_copy(value: Any, depth: int) -> Any:
    if depth <= 0:
        return _iterative_copy(value)
    leaves = _LEAVES
    if type(value) is dict:
        return {k: v if type(v) in leaves else _fast_copy(v, depth - 1) for k, v in value.items()}
    if type(value) is list or type(value) is tuple:
        return [v if type(v) in leaves else _fast_copy(v, depth - 1) for v in value]
    return _iterative_copy(value)


def _iterative_copy(value: Any) -> Any:
    if not isinstance(value, Mapping | list | tuple):
        return value
    root: dict[Any, Any] | list[Any] = {} if isinstance(value, Mapping) else []
    stack: list[tuple[Any, dict[Any, Any] | list[Any]]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, Mapping) else enumerate(source)
        for key, item in items:
            copied: Any = item
            if isinstance(item, Mapping | list | tuple):
                copied = {} if isinstance(item, Mapping) else []
                stack.append((item, copied))
            if isinstance(target, dict):
                target[key] = copied
            else:
                target.append(copied)
    return root


def set_marker(body: dict[str, Any], pos: Position, ttl: Ttl) -> str:
    """Put a marker on the block of ``pos``; a string system or content becomes one text block.

    Returns the marked block's path in the planned body (``system.0``, ``messages.3.content.0``).
    """
    marker: dict[str, Any] = {"type": "ephemeral", "ttl": ttl}
    parts = pos.path.split(".")
    if pos.level == "tools":
        body["tools"][int(parts[1])]["cache_control"] = marker
        return pos.path
    if pos.level == "system":
        if isinstance(body.get("system"), str):
            body["system"] = [{"type": "text", "text": body["system"], "cache_control": marker}]
            return "system.0"
        body["system"][int(parts[1])]["cache_control"] = marker
        return pos.path
    message = body["messages"][int(parts[1])]
    if isinstance(message.get("content"), str):
        message["content"] = [{"type": "text", "text": message["content"], "cache_control": marker}]
        return f"{pos.path}.0"
    message["content"][int(parts[3])]["cache_control"] = marker
    return pos.path


def planned_body(
    request: Mapping[str, Any], marks: Sequence[tuple[Position, Ttl]]
) -> tuple[dict[str, Any], list[str]]:
    """The plan's body: ``request`` with a marker on the block of each of ``marks``, copied on write.

    Returns the body and each marked block's path in it (as :func:`set_marker`). The caller's
    request is not changed; unmarked blocks are shared with it.
    """
    body = dict(request)
    for key in ("tools", "system", "messages"):
        value = body.get(key)
        if type(value) is list or type(value) is tuple:
            body[key] = list(value)
    owned: set[int] = set()  # messages copied by this call (alive in ``body``, so their ids hold)
    paths: list[str] = []
    for pos, ttl in marks:
        marker: dict[str, Any] = {"type": "ephemeral", "ttl": ttl}
        parts = pos.path.split(".")
        if pos.level == "tools":
            tools = body["tools"]
            tools[int(parts[1])] = {**tools[int(parts[1])], "cache_control": marker}
            paths.append(pos.path)
        elif pos.level == "system":
            system = body["system"]
            if isinstance(system, str):
                body["system"] = [{"type": "text", "text": system, "cache_control": marker}]
                paths.append("system.0")
            else:
                system[int(parts[1])] = {**system[int(parts[1])], "cache_control": marker}
                paths.append(pos.path)
        else:
            messages = body["messages"]
            m = int(parts[1])
            message = messages[m]
            if id(message) not in owned:
                message = dict(message)
                content = message.get("content")
                if type(content) is list or type(content) is tuple:
                    message["content"] = list(content)
                messages[m] = message
                owned.add(id(message))
            content = message["content"]
            if isinstance(content, str):
                message["content"] = [{"type": "text", "text": content, "cache_control": marker}]
                paths.append(f"{pos.path}.0")
            else:
                b = int(parts[3])
                content[b] = {**content[b], "cache_control": marker}
                paths.append(pos.path)
    return body, paths
