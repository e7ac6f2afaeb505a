"""Where a report or a budget check reads its calls: a ledger (sums grouped in SQL) or a frame.

Both sources answer the same questions with the same tables (:mod:`.frames`): spend by keys,
totals, the costliest prefix families and their labels, the unpriced calls and a page of the
most recent calls. :class:`LedgerSource` asks the database (:mod:`cachewise.ledger.aggregate`),
so memory follows the number of groups, not of calls; :class:`FrameSource` computes the same
from a ledger frame in memory (``frame_from_records``, a notebook experiment).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from ..errors import LedgerError
from .frames import (
    annotate,
    call_detail,
    family_labels,
    group_keys,
    prefix_families,
    spend,
    table_from_sums,
    totals,
    totals_from_table,
    unpriced,
    unpriced_from_sums,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.engine import URL

    from ..ledger import Ledger
    from ..ledger.quarantine import QuarantinedRecord
    from ..ledger.query import Filter, MoneyForm

__all__ = [
    "FrameSource",
    "LedgerSource",
    "Source",
    "as_source",
    "load_frame",
    "load_quarantine",
    "quarantine_frame",
]


class Source(Protocol):
    """What a report reads: the tables of :mod:`.frames`, however they are computed."""

    def spend(self, by: str | Sequence[str] | None = ("model",)) -> pd.DataFrame: ...

    def totals(self) -> dict[str, Any]: ...

    def unpriced(self) -> pd.DataFrame: ...

    def families(self, top: int = 10) -> pd.DataFrame: ...

    def family_labels(self, prefixes: Sequence[str]) -> dict[str, str]: ...

    def calls(self, limit: int) -> pd.DataFrame: ...

    def is_empty(self) -> bool: ...


class FrameSource:
    """A ledger frame in memory (``Ledger.to_frame()``, ``frame_from_records``)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = annotate(frame)

    def spend(self, by: str | Sequence[str] | None = ("model",)) -> pd.DataFrame:
        return spend(self.frame, by)

    def totals(self) -> dict[str, Any]:
        return totals(self.frame)

    def unpriced(self) -> pd.DataFrame:
        return unpriced(self.frame)

    def families(self, top: int = 10) -> pd.DataFrame:
        return prefix_families(self.frame, top)

    def family_labels(self, prefixes: Sequence[str]) -> dict[str, str]:
        rows = self.frame[self.frame["prefix_hash"].isin(list(prefixes))]
        return family_labels(rows)

    def calls(self, limit: int) -> pd.DataFrame:
        return call_detail(self.frame, limit=limit)

    def is_empty(self) -> bool:
        return not len(self.frame)


def as_source(data: pd.DataFrame | Source) -> Source:
    """``data`` as a :class:`Source` (a frame is wrapped in a :class:`FrameSource`)."""
    return FrameSource(data) if isinstance(data, pd.DataFrame) else data


class LedgerSource:
    """The calls of a ledger in a window and scope, summed in SQL; each table is one query.

    ``ledger`` is kept open by the caller (``with Ledger(...) as ledger``); :meth:`open` opens
    an existing one by path or URL.
    """

    def __init__(self, ledger: Ledger, flt: Filter) -> None:
        self.ledger = ledger
        self.filter = flt
        self._fine: dict[tuple[str, ...], tuple[list[str], list[Any]]] = {}

    @classmethod
    @contextmanager
    def open(
        cls,
        db: str | Path | URL | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Iterator[LedgerSource]:
        """An existing ledger (``db`` as :func:`load_frame`) as a source over the window."""
        from ..ledger import Filter, Ledger

        with Ledger(_existing(db), create=False) as ledger:
            yield cls(ledger, Filter(since, until, model, dict(tags) if tags else None))

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.ledger.read() as conn:
            yield conn

    def _groups(self, by: str | Sequence[str] | None) -> tuple[list[str], list[Any]]:
        """Sums by ``by`` plus model and cost_error (so one query also gives totals and the
        unpriced table), and the keys they are grouped by."""
        from ..ledger.aggregate import group_sums

        keys = group_keys(by)
        fine = list(dict.fromkeys([*keys, "model", "cost_error"]))
        if tuple(fine) not in self._fine:
            with self._read() as conn:
                self._fine[tuple(fine)] = (fine, group_sums(conn, self.filter, fine))
        return self._fine[tuple(fine)]

    def _any_groups(self) -> tuple[list[str], list[Any]]:
        return next(iter(self._fine.values())) if self._fine else self._groups(())

    def spend(self, by: str | Sequence[str] | None = ("model",)) -> pd.DataFrame:
        from ..ledger.aggregate import rollup

        keys = group_keys(by)
        fine, groups = self._groups(keys)
        return table_from_sums(rollup(groups, [fine.index(key) for key in keys]), keys)

    def totals(self) -> dict[str, Any]:
        from ..ledger.aggregate import rollup

        _, groups = self._any_groups()
        return totals_from_table(table_from_sums(rollup(groups, []), ()))

    def unpriced(self) -> pd.DataFrame:
        fine, groups = self._any_groups()
        return unpriced_from_sums(groups, fine.index("model"), fine.index("cost_error"))

    def families(self, top: int = 10) -> pd.DataFrame:
        from ..ledger.aggregate import group_sums

        with self._read() as conn:
            groups = group_sums(conn, self.filter, ["prefix_hash"], prefixed=True, top=top)
        return table_from_sums(groups, ["prefix_hash"]).head(top).reset_index(drop=True)

    def family_labels(self, prefixes: Sequence[str]) -> dict[str, str]:
        from ..ledger.aggregate import family_labels as labels

        with self._read() as conn:
            found = labels(conn, self.filter, [str(p) for p in prefixes])
        return {prefix: " · ".join(part for part in pair if part) for prefix, pair in found.items()}

    def calls(self, limit: int) -> pd.DataFrame:
        """The ``limit`` most recent calls (one page: only those calls and their families are read)."""
        from ..ledger.aggregate import read_page

        with self._read() as conn:
            frame, ids = read_page(conn, self.filter, limit)
        detail = call_detail(annotate(frame))
        return detail[detail["request_id"].isin(ids)].head(limit).reset_index(drop=True)

    def is_empty(self) -> bool:
        return not self.totals()["calls"]


def _existing(db: str | Path | URL | None) -> URL:
    from ..ledger.store import resolve_url

    url = resolve_url(db)
    if url.get_backend_name() == "sqlite" and not Path(str(url.database)).exists():
        raise LedgerError(f"no ledger at {url.database}; pass --db PATH or URL, or set CACHEWISE_DB")
    return url


def load_frame(
    db: str | Path | URL | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    must_exist: bool = True,
    money: MoneyForm = "decimal",
) -> pd.DataFrame:
    """``Ledger(db).to_frame(...)``; ``db`` defaults to ``$CACHEWISE_DB`` or the default ledger file.

    With ``must_exist`` a SQLite file that is not there is a :class:`LedgerError` rather than a new,
    empty ledger: a mistyped path must not read as "nothing spent". ``money="arrow"``: exact
    numeric ``decimal128(38, 12)`` money columns instead of ``Decimal`` objects (a fraction of the
    memory). For sums over a large window use :class:`LedgerSource` (grouped in SQL); for the rows
    themselves in chunks, ``Ledger.iter_frames``.
    """
    from ..ledger import Ledger
    from ..ledger.store import resolve_url

    url = _existing(db) if must_exist else resolve_url(db)
    with Ledger(url) as ledger:
        scope = dict(tags) if tags else None
        return ledger.to_frame(since=since, until=until, model=model, tags=scope, money=money)


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
