"""The API's cache diagnostics (docs/api-notes.md §2.6): ``diagnostics.previous_message_id``.

A request may name the ``id`` of an earlier response; the reply then carries
``diagnostics.cache_miss_reason`` saying why this request's prefix diverged from that one's:
``model_changed`` (model or speed), ``tools_changed``, ``system_changed``, ``messages_changed``
(an earlier entry of ``messages`` differs, instead of entries only being appended), each with
``cache_missed_input_tokens``; ``unavailable`` when model, system and tools match but another
prompt-affecting setting (``thinking``, ``tool_choice``) differs; ``previous_message_not_found``
for an id the emulator never answered. ``diagnostics`` is null when nothing diverged, or when the
request passed ``previous_message_id: null`` (opting in on a first turn).

The emulator keeps, per answered message, hashes of each part (no text) and the tokens its
prompt cached; it shares no code with the wrapper's own prefix diff.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import invalid

__all__ = ["Diagnostics", "Fingerprint"]

_OTHER = ("thinking", "tool_choice", "output_config")
_KEEP = 100_000


def _digest(value: Any) -> str:
    def strip(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: strip(x) for k, x in v.items() if k != "cache_control"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    data = json.dumps(strip(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One request's prompt, as hashes of its parts, and the tokens its prompt cached."""

    model: str
    speed: str
    tools: str
    system: str
    messages: tuple[str, ...]
    other: str
    cached_tokens: int

    @classmethod
    def of(cls, body: Mapping[str, Any], model: str, speed: str, cached_tokens: int) -> Fingerprint:
        messages = body.get("messages")
        return cls(
            model=model,
            speed=speed,
            tools=_digest(body.get("tools") or []),
            system=_digest(body.get("system") or []),
            messages=tuple(_digest(m) for m in messages) if isinstance(messages, list) else (),
            other=_digest({k: body.get(k) for k in _OTHER}),
            cached_tokens=cached_tokens,
        )


def previous_id(body: Mapping[str, Any]) -> tuple[bool, str | None]:
    """``(asked, id)``: whether the request carries ``diagnostics``, and the id it names."""
    if "diagnostics" not in body or body["diagnostics"] is None:
        return False, None
    raw = body["diagnostics"]
    if not isinstance(raw, Mapping):
        raise invalid("diagnostics: Input should be a valid dictionary")
    value = raw.get("previous_message_id")
    if value is not None and not isinstance(value, str):
        raise invalid("diagnostics.previous_message_id: Input should be a valid string")
    return True, value


class Diagnostics:
    """The fingerprints of answered messages and the diagnosis of a request against one of them."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, Fingerprint] = OrderedDict()
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()

    def remember(self, message_id: str, fingerprint: Fingerprint) -> None:
        with self._lock:
            self._seen[message_id] = fingerprint
            while len(self._seen) > _KEEP:
                self._seen.popitem(last=False)

    def answer(self, previous: str | None, now: Fingerprint) -> dict[str, Any] | None:
        """The response's ``diagnostics`` for a request fingerprinted ``now`` naming ``previous``."""
        if previous is None:
            return None
        with self._lock:
            before = self._seen.get(previous)
        if before is None:
            return {"cache_miss_reason": {"type": "previous_message_not_found"}}
        kind: str | None = None
        if (before.model, before.speed) != (now.model, now.speed):
            kind = "model_changed"
        elif before.tools != now.tools:
            kind = "tools_changed"
        elif before.system != now.system:
            kind = "system_changed"
        elif before.other != now.other:
            return {"cache_miss_reason": {"type": "unavailable"}}
        elif now.messages[: len(before.messages)] != before.messages:
            kind = "messages_changed"
        if kind is None:
            return None
        return {"cache_miss_reason": {"type": kind, "cache_missed_input_tokens": before.cached_tokens}}
