"""Read a ledger frame for a report or a budget check: which database, which window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from ..errors import LedgerError

__all__ = ["load_frame"]


def load_frame(
    db: str | None = None,
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
        return ledger.to_frame(
            since=since, until=until, model=model, tags=dict(tags) if tags else None, money="decimal"
        )
