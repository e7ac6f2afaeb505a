"""Parse report and budget windows: ``7d``, ``24h``, ``30m``, ``today``, or an ISO date/datetime."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["parse_when"]

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(value: str, now: datetime | None = None) -> datetime:
    """A UTC datetime: ``7d`` (7 days before ``now``), ``today`` (UTC midnight), ``2026-11-01``,
    ``2026-11-01T10:00`` (UTC if no zone). ``ValueError`` says what is accepted."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    text = value.strip().lower()
    if text == "now":
        return moment
    if text == "today":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    match = _RELATIVE.match(text)
    if match:
        try:
            return moment - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except OverflowError:
            raise ValueError(f"{value!r} reaches back before the year 1") from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is not a window: use 30m, 24h, 7d, 2w, today, or an ISO date/datetime"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
