"""The API's own cache diagnostics, read from a Messages response (docs/api-notes.md §2.6).

The response's ``diagnostics.cache_miss_reason`` is one of ``model_changed``, ``system_changed``,
``tools_changed``, ``messages_changed`` (each with ``cache_missed_input_tokens``),
``previous_message_not_found`` and ``unavailable``; ``diagnostics`` is null when nothing diverged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ApiReason", "read_api_reason"]


@dataclass(frozen=True, slots=True)
class ApiReason:
    """The API's reason (its ``type``) and the tokens it says would have been read."""

    reason: str
    missed_tokens: int | None = None


def read_api_reason(message: Any) -> ApiReason | None:
    """The reason in a response (a dict), or ``None`` when there is none or it is malformed."""
    if not isinstance(message, Mapping):
        return None
    diagnostics = message.get("diagnostics")
    if not isinstance(diagnostics, Mapping):
        return None
    reason = diagnostics.get("cache_miss_reason")
    if not isinstance(reason, Mapping) or not isinstance(reason.get("type"), str):
        return None
    tokens = reason.get("cache_missed_input_tokens")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        tokens = None
    return ApiReason(str(reason["type"])[:64], tokens)
