"""Rows the database refused: kept aside with their reason and their raw record, never dropped.

A row is *refused* when the database (or its driver) rejects the row itself: a value
outside a column's range (a token count above BIGINT), text the driver cannot encode (an
unpaired surrogate), a byte PostgreSQL rejects in text (NUL), a value of the wrong type.
Retrying such a row can never succeed, so it is moved to the ``quarantine`` table instead
of blocking the rows behind it. A database that cannot be *reached* is another matter:
those rows go to the spool and are retried (see :mod:`.writer`).

The raw record is stored as ASCII JSON (``ensure_ascii``), which any ``TEXT`` column on
either dialect accepts: surrogates and NULs become ``\\uXXXX`` escapes, huge integers stay
digits. Free text passes through :func:`~.privacy.redact` as in ``calls``; prompt text is
never part of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import exc as sa_exc

from .privacy import redact
from .record import CallRecord
from .schema import quarantine

__all__ = ["QuarantinedRecord", "first_line", "is_refusal", "raw_record_json", "storable_text"]

#: Errors raised in Python while a row is converted or bound: the row's values, never the database.
_CONVERSION_ERRORS = (OverflowError, UnicodeError, ValueError, TypeError)
_REFUSING_DB_ERRORS = (sa_exc.DataError, sa_exc.IntegrityError)
_ROW_COLUMNS = tuple(column.name for column in quarantine.columns if column.name != "id")


def is_refusal(exc: BaseException) -> bool:
    """True when ``exc`` says the row itself was refused (quarantine), not that the database is away."""
    if isinstance(exc, _REFUSING_DB_ERRORS):
        return True
    if isinstance(exc, sa_exc.ProgrammingError):
        # SQLite refuses to bind a value of an unsupported type with ProgrammingError.
        return isinstance(exc.orig, sqlite3.ProgrammingError) and "binding parameter" in str(exc.orig)
    if isinstance(exc, sa_exc.DBAPIError):
        return False  # OperationalError, InterfaceError, ...: connection-level, spool and retry
    if isinstance(exc, sa_exc.StatementError):  # a bind processor failed on a value
        return exc.orig is not None and isinstance(exc.orig, _CONVERSION_ERRORS)
    return isinstance(exc, _CONVERSION_ERRORS)


def storable_text(text: str) -> str:
    """``text`` with NULs and unencodable code points escaped, so any TEXT column takes it."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _fallback(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, tuple | list | set | frozenset):
        return list(value)
    return repr(value)


def raw_record_json(record: CallRecord) -> str:
    """The record as ASCII JSON: the spool-line form when it can be built, else field by field."""
    try:
        data: dict[str, Any] = record.to_json()
    except Exception:  # the values that broke the row may break this too: keep every field
        data = {f.name: getattr(record, f.name) for f in fields(record) if f.name != "prompt"}
    text = json.dumps(data, ensure_ascii=True, sort_keys=True, separators=(",", ":"), default=_fallback)
    return redact(text) or ""


def first_line(exc: BaseException) -> str:
    """The first line of the driver's message (SQLAlchemy's wrapper adds the SQL after it)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def _reason(exc: BaseException | str) -> str:
    if isinstance(exc, str):
        return storable_text(exc)
    orig = getattr(exc, "orig", None) or exc
    return storable_text(f"{type(orig).__name__}: {first_line(exc)}")


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """One refused row: what the record was (``raw_record``, ASCII JSON) and why it was refused."""

    reason: str
    raw_record: str
    quarantined_at: datetime
    request_id: str | None = None
    model: str | None = None
    started_at: datetime | None = None

    @classmethod
    def of(
        cls, record: CallRecord, why: BaseException | str, at: datetime | None = None
    ) -> QuarantinedRecord:
        started = record.started_at if isinstance(record.started_at, datetime) else None
        return cls(
            reason=redact(_reason(why)) or "",
            raw_record=raw_record_json(record),
            quarantined_at=at or datetime.now(UTC),
            request_id=_text_or_none(record.request_id),
            model=_text_or_none(record.model),
            started_at=started,
        )

    @property
    def raw_hash(self) -> str:
        """sha256 of the raw record: the same record quarantined twice is kept once."""
        return hashlib.sha256(self.raw_record.encode("ascii", "backslashreplace")).hexdigest()

    def raw(self) -> dict[str, Any]:
        """The raw record decoded from JSON (strings may hold the very values that were refused)."""
        data = json.loads(self.raw_record)
        return data if isinstance(data, dict) else {"value": data}

    def to_row(self) -> dict[str, Any]:
        """The ``quarantine`` table's columns (all but ``id``), in its order."""
        return {name: getattr(self, name) for name in _ROW_COLUMNS}

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> QuarantinedRecord:
        return cls(
            reason=row["reason"],
            raw_record=row["raw_record"],
            quarantined_at=row["quarantined_at"],
            request_id=row.get("request_id"),
            model=row.get("model"),
            started_at=row.get("started_at"),
        )

    def to_json(self) -> dict[str, Any]:
        """A spool line's payload (the database was down when the row was refused)."""
        out = self.to_row()
        out.pop("raw_hash")
        for key in ("quarantined_at", "started_at"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QuarantinedRecord:
        row = dict(data)
        for key in ("quarantined_at", "started_at"):
            if row.get(key) is not None:
                row[key] = datetime.fromisoformat(row[key])
        return cls.from_row(row)


def _text_or_none(value: object) -> str | None:
    return storable_text(value) if isinstance(value, str) else None
