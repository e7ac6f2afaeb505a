"""Column types that keep money exact and times in UTC on SQLite and PostgreSQL alike.

* :class:`Money` is PostgreSQL ``NUMERIC`` without precision or scale (arbitrary
  precision, stored exactly) and SQLite ``TEXT`` holding the decimal string (SQLite's
  own NUMERIC would round to a 64-bit float). Python sees :class:`~decimal.Decimal`.
* :class:`UTCDateTime` is PostgreSQL ``TIMESTAMP WITH TIME ZONE`` and SQLite ``TEXT``
  in the fixed-width form ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC), which sorts and compares
  correctly as text. Python sees aware UTC datetimes; naive ones are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["Money", "UTCDateTime", "format_utc", "money_text"]

_T = TypeVar("_T")


def money_text(value: Decimal) -> str:
    """The exact decimal string stored for ``value`` (``Decimal(money_text(v)) == v``)."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise ValueError(f"money must be finite, got {value}")
    return str(value)


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value.isoformat()} has no timezone; pass an aware UTC datetime")
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC: fixed width, so text order is time order."""
    if value.tzinfo is not UTC:
        value = _aware_utc(value)
    # The first 26 characters of the aware form: its "+00:00" cut off (cheaper than a naive copy).
    return value.isoformat(sep=" ", timespec="microseconds")[:26]


class _TextOnSQLite(TypeDecorator[_T]):
    """A column that is ``postgresql_type`` on PostgreSQL and ``TEXT`` everywhere else (SQLite)."""

    postgresql_type: ClassVar[TypeEngine[Any]]

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(self.postgresql_type)
        return dialect.type_descriptor(Text())


class Money(_TextOnSQLite[Decimal]):
    """An exact decimal amount of USD (or hours): NUMERIC on PostgreSQL, decimal text on SQLite."""

    impl = Text
    cache_ok = True
    postgresql_type = postgresql.NUMERIC(asdecimal=True)

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        text = money_text(value)
        return value if dialect.name == "postgresql" else text

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(_TextOnSQLite[datetime]):
    """An aware UTC timestamp: timestamptz on PostgreSQL, fixed-width UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True
    postgresql_type = postgresql.TIMESTAMP(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return _aware_utc(value) if dialect.name == "postgresql" else format_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
