"""The Models API (docs/api-notes.md §4.2) served from the PriceBook's model entries.

``ModelInfo`` follows the SDK 2.12.0 type (``types/model_info.py``): lifecycle, dates and
line come from the price table; capabilities are a generic "everything supported" object
(the table does not record them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from ..errors import PricingError
from ..pricing import ModelEntry, PriceBook
from .errors import ApiError, invalid, not_found

__all__ = ["Catalog", "paginate"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LIFECYCLES = ("active", "deprecated", "retired")


def _stamp(day: date | None) -> str | None:
    if day is None:
        return None
    return datetime.combine(day, time(), tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _yes() -> dict[str, bool]:
    return {"supported": True}


def _capabilities() -> dict[str, Any]:
    return {
        "batch": _yes(),
        "citations": _yes(),
        "code_execution": _yes(),
        "context_management": {"supported": True},
        "effort": {"supported": True, "low": _yes(), "medium": _yes(), "high": _yes(), "max": _yes()},
        "image_input": _yes(),
        "pdf_input": _yes(),
        "server_tools": {"supported": True, "code_execution": _yes(), "web_search": _yes()},
        "structured_outputs": _yes(),
        "thinking": {
            "supported": True,
            "types": {"adaptive": _yes(), "between_tools": _yes(), "disabled": _yes(), "enabled": _yes()},
        },
    }


class Catalog:
    """Models known to the emulator, with their lifecycle at a given time."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book

    def lifecycle(self, entry: ModelEntry, now: datetime) -> str:
        today = now.date()
        if entry.retired is not None and entry.retired <= today:
            return "retired"
        if entry.deprecated is not None and entry.deprecated <= today:
            return "deprecated"
        if entry.retired is not None:
            return "deprecated"  # a retirement is scheduled (e.g. Sonnet 4.5 has no deprecation date)
        return "active"

    def info(self, entry: ModelEntry, now: datetime) -> dict[str, Any]:
        stage = self.lifecycle(entry, now)
        return {
            "type": "model",
            "id": entry.id,
            "display_name": entry.name,
            "created_at": _stamp(entry.released) or _EPOCH.isoformat().replace("+00:00", "Z"),
            "lifecycle": stage,
            "deprecated_at": _stamp(entry.deprecated) if stage != "active" else None,
            "retires_at": _stamp(entry.retired) if stage != "active" else None,
            "line": entry.family,
            "max_input_tokens": entry.context_window,
            "max_tokens": entry.max_output_tokens,
            "capabilities": _capabilities(),
        }

    def resolve(self, model: str, now: datetime, *, for_inference: bool) -> ModelEntry:
        """The entry for an id or alias; 404 ``not_found_error`` if unknown (or retired, for inference)."""
        try:
            entry = self.book.resolve(model)
        except PricingError:
            raise not_found(f"model: {model}") from None
        if for_inference and self.lifecycle(entry, now) == "retired":
            raise not_found(f"model: {model}")
        return entry

    def page(
        self,
        now: datetime,
        *,
        after_id: str | None,
        before_id: str | None,
        limit: int,
        lifecycles: Sequence[str],
    ) -> dict[str, Any]:
        if not 1 <= limit <= 1000:
            raise invalid("limit: Input should be between 1 and 1000")
        wanted = set(lifecycles) or {"active", "deprecated"}
        if not wanted <= set(_LIFECYCLES) or len(lifecycles) > 3:
            raise invalid("lifecycle: each value must be one of active, deprecated, retired")
        entries = [e for e in self.book.models() if self.lifecycle(e, now) in wanted]
        entries.sort(key=lambda e: (e.released or date.min, e.id), reverse=True)  # newest first
        ids = [e.id for e in entries]
        return paginate([self.info(e, now) for e in entries], ids, after_id, before_id, limit)


def paginate(
    items: list[dict[str, Any]], ids: list[str], after_id: str | None, before_id: str | None, limit: int
) -> dict[str, Any]:
    """The API's cursor page: ``data``, ``has_more``, ``first_id``, ``last_id``."""
    if after_id is not None and before_id is not None:
        raise invalid("after_id and before_id cannot both be given")
    if after_id is not None:
        if after_id not in ids:
            raise ApiError(400, "invalid_request_error", f"after_id: unknown id {after_id!r}")
        start = ids.index(after_id) + 1
        chunk = items[start : start + limit]
        more = start + limit < len(items)
    elif before_id is not None:
        if before_id not in ids:
            raise ApiError(400, "invalid_request_error", f"before_id: unknown id {before_id!r}")
        end = ids.index(before_id)
        begin = max(0, end - limit)
        chunk = items[begin:end]
        more = begin > 0
    else:
        chunk = items[:limit]
        more = limit < len(items)
    return {
        "data": chunk,
        "has_more": more,
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
    }
