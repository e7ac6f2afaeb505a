"""What the runtime budget and the CI check share, without pandas: the run tag, the zero amount,
and where a budget's window starts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

__all__ = ["RUN_TAG", "ZERO", "window_start"]

#: The tag that marks the calls of one CI run (``--run-id``).
RUN_TAG = "run_id"
ZERO = Decimal(0)


def window_start(window: str, now: datetime, run_since: datetime | None) -> datetime | None:
    """Start of ``window`` at ``now`` (UTC): the run marker, the UTC day, or the UTC month."""
    now = now.astimezone(UTC)
    if window == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return run_since
