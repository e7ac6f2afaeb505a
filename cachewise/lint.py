"""Cache-buster lint: content that makes a cached prefix change from call to call.

Rules (each warning names the path of the offending block or field):

* ``volatile-content`` — inside the cached part of a request (up to its last breakpoint,
  or the whole prompt when it has none or uses automatic caching), text that looks like it
  changes per call: ISO timestamps, dates, UUIDs, request/message ids, long hex strings,
  nonce-like tokens, and fields named like ``timestamp`` / ``request_id`` / ``nonce``.
  Binary payloads (``source.data``) and tool-use ids are not inspected.
* ``invalid-marker`` — markers the API rejects: on thinking or empty text blocks, more
  than 4, or a 1h marker after a 5m one (docs/api-notes.md §1.2, §1.4); a ``cache_control``
  that is not ``{"type": "ephemeral"}`` with an optional ``ttl`` of ``"5m"`` or ``"1h"``
  (docs/api-notes.md §1.2), e.g. ``"ttl": "2h"``.
* Given several requests of one family (same model), across consecutive requests:
  ``reordered-tools`` (same tools, another order), ``unsorted-keys`` (a tool schema or a
  ``tool_use.input`` with the same content but another key order, docs/api-notes.md §2.4), and
  ``prefix-churn`` (the first position that differs, when the difference is volatile-looking).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .prompt import Prompt, canonical_json

#: What a ``cache_control`` may say (docs/api-notes.md §1.2): its one type and the TTLs allowed.
MARKER_TYPE = "ephemeral"
ALLOWED_TTLS = ("5m", "1h")

__all__ = ["ALLOWED_TTLS", "MARKER_TYPE", "LintWarning", "lint", "lint_family"]

Severity = Literal["warning", "error"]

#: What volatile content looks like: a label for the warning, and the regular expression.
_PATTERN_SOURCES: dict[str, str] = {
    "ISO timestamp": r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?\b",
    "UUID": r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    "request id": r"\b(req|msg|msgbatch|trace|span|run)_[A-Za-z0-9]{12,}\b",
    "date": (
        r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|"
        r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4}\b|"
        r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*, \d{1,2} "
        r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    ),
    "Unix timestamp": r"\b1[6-9]\d{8}(\d{3})?\b",
    "long hex string": r"\b[0-9a-fA-F]{24,}\b",
    "nonce-like token": (
        r"\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[A-Z])"
        r"[A-Za-z0-9_-]{24,}\b"
    ),
}
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(source)) for label, source in _PATTERN_SOURCES.items()
)
_VOLATILE_KEYS = re.compile(
    r"(^|_)(timestamp|time|now|date|nonce|request_?id|trace_?id|session_?id|uuid)$", re.IGNORECASE
)
_SKIP_KEYS = frozenset({"data", "id", "tool_use_id", "signature", "cache_control"})


@dataclass(frozen=True, slots=True)
class LintWarning:
    """One finding: the rule, where (a request path), and what to do about it."""

    rule: str
    path: str
    message: str
    severity: Severity = "warning"
    request: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The warning as JSON-ready fields (``request`` is the index of the file in call order)."""
        return {
            "rule": self.rule,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
            "request": self.request,
        }

    def __str__(self) -> str:
        where = f"request {self.request}: " if self.request is not None else ""
        return f"{self.severity}: {where}{self.path}: [{self.rule}] {self.message}"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str, str | None]]:
    """(path, text, key) for every string under ``value``, skipping binary data and ids."""
    if isinstance(value, str):
        yield path, value, None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key in _SKIP_KEYS:
                continue
            sub = f"{path}.{key}"
            if (
                isinstance(item, str | int | float)
                and not isinstance(item, bool)
                and _VOLATILE_KEYS.search(str(key))
            ):
                yield sub, str(item), str(key)
                continue
            yield from _strings(item, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}.{i}")


def _block_at(body: Mapping[str, Any], path: str) -> Any:
    node: Any = body
    for part in path.split("."):
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, Mapping):
            node = node.get(part)
        else:
            return None
    return node


def _cached_limit(prompt: Prompt) -> int:
    if prompt.auto is not None or not prompt.markers:
        return len(prompt) - 1
    return max(m.position for m in prompt.markers)


def _scan(text: str) -> str | None:
    for label, pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            sample = match.group(0)
            return f"{label} {sample[:40]!r}"
    return None


def lint(request: Mapping[str, Any], *, index: int | None = None) -> list[LintWarning]:
    """Warnings for one request: volatile content before its last breakpoint, invalid markers."""
    prompt = Prompt(request)
    out: list[LintWarning] = []
    limit = _cached_limit(prompt)
    for pos in prompt.positions[: limit + 1]:
        paths = [pos.path]
        if pos.message is not None and pos.block is not None:
            # A run covers several blocks: inspect each.
            prev = prompt.positions[pos.index - 1] if pos.index > 0 else None
            start = (
                prev.block + 1
                if prev is not None and prev.message == pos.message and prev.block is not None
                else 0
            )
            paths = [f"messages.{pos.message}.content.{k}" for k in range(start, pos.block + 1)]
        for path in paths:
            block = _block_at(request, path)
            for where, text, key in _strings(block, path):
                found = _scan(text)
                if found is None and key is not None:
                    found = f"a field named {key!r}"
                if found is not None:
                    out.append(
                        LintWarning(
                            "volatile-content",
                            where,
                            f"{found} inside the cached prefix (position {pos.index}); it changes the prefix "
                            "on every call: move it after the last breakpoint or make it stable",
                            request=index,
                        )
                    )
    out.extend(_marker_checks(prompt, request, index))
    out.extend(_marker_shapes(request, index))
    return out


#: Keys under which user JSON lives (tool inputs and schemas, binary data): a ``cache_control``
#: key there is the user's data, not a marker.
_USER_DATA_KEYS = frozenset({"input", "input_schema", "data", "metadata"})


def _marker_values(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path of the ``cache_control``, its value) for every marker in a request, at any depth."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key == "cache_control":
                if item is not None:
                    yield sub, item
            elif key not in _USER_DATA_KEYS:
                yield from _marker_values(item, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _marker_values(item, f"{path}.{i}")


def _marker_shapes(request: Mapping[str, Any], index: int | None) -> list[LintWarning]:
    """A ``cache_control`` the API rejects for its shape: another type, or a TTL not allowed."""
    allowed = " or ".join(f"{ttl!r}" for ttl in ALLOWED_TTLS)
    out: list[LintWarning] = []
    for path, marker in _marker_values(request, ""):
        if not isinstance(marker, Mapping):
            out.append(
                LintWarning(
                    "invalid-marker",
                    path,
                    f"cache_control must be an object {{'type': {MARKER_TYPE!r}}} with an optional ttl "
                    f"of {allowed}, not {marker!r} (docs/api-notes.md §1.2)",
                    "error",
                    index,
                )
            )
            continue
        kind = marker.get("type")
        if kind != MARKER_TYPE:
            out.append(
                LintWarning(
                    "invalid-marker",
                    f"{path}.type",
                    f"cache_control type {kind!r} is not allowed: the only type is {MARKER_TYPE!r} "
                    "(docs/api-notes.md §1.2)",
                    "error",
                    index,
                )
            )
        if "ttl" in marker and marker["ttl"] not in ALLOWED_TTLS:
            out.append(
                LintWarning(
                    "invalid-marker",
                    f"{path}.ttl",
                    f"ttl {marker['ttl']!r} is not allowed: use {allowed}, or leave it out for 5m "
                    "(docs/api-notes.md §1.2)",
                    "error",
                    index,
                )
            )
    return out


def _marker_checks(prompt: Prompt, request: Mapping[str, Any], index: int | None) -> list[LintWarning]:
    out: list[LintWarning] = []

    def invalid(path: str, message: str) -> None:
        out.append(LintWarning("invalid-marker", path, message, "error", index))

    total = len(prompt.markers) + (1 if prompt.auto else 0)
    if total > 4:
        invalid("cache_control", f"A maximum of 4 blocks with cache_control may be provided. Found {total}.")
    seen_5m = False
    for marker in prompt.markers:
        pos = prompt.positions[marker.position]
        if not marker.nested and not pos.markable and pos.path == marker.path:
            invalid(marker.path, f"{pos.why_not}")
        if marker.ttl == "1h" and seen_5m:
            invalid(
                f"{marker.path}.cache_control.ttl",
                "a ttl='1h' cache_control block must not come after a ttl='5m' one",
            )
        seen_5m = seen_5m or marker.ttl == "5m"
    if prompt.auto == "1h" and seen_5m:
        invalid("cache_control", "automatic caching with ttl 1h after a 5m block marker")
    return out


def _tool_names(request: Mapping[str, Any]) -> list[str]:
    return [str(t.get("name")) for t in request.get("tools") or [] if isinstance(t, Mapping)]


def _tool_uses(request: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for m, message in enumerate(request.get("messages") or []):
        content = message.get("content") if isinstance(message, Mapping) else None
        for k, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, Mapping) and block.get("type") in ("tool_use", "server_tool_use"):
                yield str(block.get("id")), f"messages.{m}.content.{k}.input", block.get("input")


def lint_family(requests: Sequence[Mapping[str, Any]]) -> list[LintWarning]:
    """Warnings for several requests of one family (in order): everything :func:`lint` finds,
    plus prefix churn between consecutive requests that breaks reuse."""
    out: list[LintWarning] = []
    for i, request in enumerate(requests):
        out.extend(lint(request, index=i))
    for i in range(1, len(requests)):
        before, after = requests[i - 1], requests[i]
        if before.get("model") != after.get("model"):
            continue
        out.extend(_churn(before, after, i))
    return _dedupe(out)


def _churn(before: Mapping[str, Any], after: Mapping[str, Any], i: int) -> list[LintWarning]:
    out: list[LintWarning] = []

    def warn(rule: str, path: str, message: str) -> None:
        out.append(LintWarning(rule, path, message, request=i))

    names_a, names_b = _tool_names(before), _tool_names(after)
    if names_a != names_b and sorted(names_a) == sorted(names_b):
        warn(
            "reordered-tools",
            "tools",
            f"the same tools in another order ({', '.join(names_b[:6])}…): every cache "
            "level is lost; keep a stable order",
        )
    tools_a = {str(t.get("name")): t for t in before.get("tools") or [] if isinstance(t, Mapping)}
    for j, tool in enumerate(after.get("tools") or []):
        if not isinstance(tool, Mapping):
            continue
        old = tools_a.get(str(tool.get("name")))
        if old is not None and _key_order_only(old, tool):
            warn(
                "unsorted-keys",
                f"tools.{j}",
                "the tool definition is the same but its keys come in another order; "
                "serialise with sorted keys",
            )
    uses_a = {tid: value for tid, _, value in _tool_uses(before)}
    for tid, path, value in _tool_uses(after):
        old = uses_a.get(tid)
        if old is not None and _key_order_only({"input": old}, {"input": value}):
            warn(
                "unsorted-keys",
                path,
                "this tool_use input was replayed with another key order; the prefix "
                "changes from here (Go and Swift randomise map order)",
            )
    pa, pb = Prompt(before), Prompt(after)
    for x, y in zip(pa.positions, pb.positions, strict=False):
        if x.prefix_hash == y.prefix_hash:
            continue
        if x.path != y.path:
            break
        old_block, new_block = _block_at(before, x.path), _block_at(after, y.path)
        old_text = " ".join(t for _, t, _ in _strings(old_block, x.path))
        new_text = " ".join(t for _, t, _ in _strings(new_block, y.path))
        changed = _changed_token(old_text, new_text)
        if changed is not None and _scan(changed) is not None:
            warn(
                "prefix-churn",
                y.path,
                f"the shared prefix breaks here: {_scan(changed)} changed between calls",
            )
        break
    return out


def _key_order_only(old: Any, new: Any) -> bool:
    """``old`` and ``new`` differ only in key order: their bytes differ, their sorted forms do not."""
    if canonical_json(old) == canonical_json(new):
        return False
    return canonical_json(old, sort_all=True) == canonical_json(new, sort_all=True)


def _changed_token(old: str, new: str) -> str | None:
    a, b = old.split(), new.split()
    for x, y in zip(a, b, strict=False):
        if x != y:
            return y
    return None if len(a) == len(b) else " ".join(b[len(a) :]) or None


def _dedupe(items: Iterable[LintWarning]) -> list[LintWarning]:
    seen: set[tuple[str, str, str]] = set()
    out: list[LintWarning] = []
    for item in items:
        key = (item.rule, item.path, item.message)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
