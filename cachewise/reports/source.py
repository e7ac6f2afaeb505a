"""Read a ledger frame for a report or a budget check: which database, which window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import LedgerError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from ..ledger.quarantine import QuarantinedRecord

__all__ = ["load_frame", "load_quarantine", "quarantine_frame"]


def load_frame(
    db: str | Path | URL | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    must_exist: bool = True,
) -> pd.DataFrame:
    """``Ledger(db).to_frame(...)``; ``db`` defaults to ``$CACHEWISE_DB`` or the default ledger file.

    With ``must_exist`` a SQLite file that is not there is a :class:`LedgerError` rather than a new,
    empty ledger: a mistyped path must not read as "nothing spent".
    """
    from ..ledger import Ledger
    from ..ledger.store import resolve_url

    url = resolve_url(db)
    if must_exist and url.get_backend_name() == "sqlite" and not Path(str(url.database)).exists():
        raise LedgerError(f"no ledger at {url.database}; pass --db PATH or URL, or set CACHEWISE_DB")
    with Ledger(url) as ledger:
        return ledger.to_frame(since=since, until=until, model=model, tags=dict(tags) if tags else None)


#: Columns of :func:`quarantine_frame`: enough to place a refused record in a report's or a budget's
#: window and scope (the same names as the ledger frame's), and why it was refused.
QUARANTINE_COLUMNS = ("started_at", "model", "tags", "request_id", "reason")


def quarantine_frame(records: Sequence[QuarantinedRecord]) -> pd.DataFrame:
    """Quarantined records (calls the database refused, in no total) as a frame.

    ``started_at`` is the call's start (the time it was refused when the record had none), ``tags``
    the tags kept in the raw record.
    """
    rows = []
    for record in records:
        raw = record.raw()
        tags = raw.get("tags")
        rows.append(
            {
                "started_at": record.started_at or record.quarantined_at,
                "model": record.model or "unknown",
                "tags": dict(tags) if isinstance(tags, Mapping) else {},
                "request_id": record.request_id,
                "reason": record.reason,
            }
        )
    frame = pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS))
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame


def load_quarantine(
    db: str | Path | URL | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The quarantined records of an existing ledger in the window, as :func:`quarantine_frame`."""
    from ..ledger import Ledger

    with Ledger(db, create=False) as ledger:
        records = ledger.quarantined(since, until, model, dict(tags) if tags else None)
    return quarantine_frame(records)
