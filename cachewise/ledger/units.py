"""Money as integers the database adds exactly: units of 10⁻¹² USD (picodollars).

Every cost column of ``calls`` has an integer twin, ``<column>_units`` (schema step 0005):
the amount times 10¹². SQL ``SUM`` over integers is exact on both dialects (PostgreSQL
sums ``BIGINT`` into ``NUMERIC``; SQLite sums 64-bit integers and raises ``integer overflow``
rather than round), so totals need no per-row Python.

Why 10⁻¹²: every rate of the shipped price table, under every modifier (batch ×0.5, US
residency ×1.1, long-context tiers, fast mode and its cache ratios, web search per request,
code execution per hour), is a whole number of units per token (or request, or hour):
the finest needs 10⁻¹¹ (tests/ledger/test_units.py checks them all). Token counts are whole,
so every priced cost is too.

A row whose money is *not* a whole number of units (a user's overlay with finer rates, code
execution hours with more than ten decimals) or beyond 64 bits keeps ``NULL`` in **all** its
units columns; ``code_execution_hours_units IS NULL`` marks it (that column is never NULL
otherwise) and totals add those few rows from the exact decimal columns instead.

The decimal columns stay the record of truth: a row reads back digit for digit as written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..pricing.cost import COST_FIELDS

__all__ = [
    "EXPONENT",
    "INT64_MAX",
    "MAX_SQLITE_SUM_USD",
    "MONEY_COLUMNS",
    "UNIT",
    "UNITS_COLUMNS",
    "from_units",
    "row_units",
    "to_units",
    "units_of",
]

#: Units are 10**-EXPONENT of a dollar (or of an hour, for ``code_execution_hours``).
EXPONENT = 12
UNIT = Decimal(1).scaleb(-EXPONENT)
INT64_MAX = 2**63 - 1
#: The largest |sum| one SQLite ``SUM`` of a units column can reach before ``integer overflow``
#: (totals then fall back to a split sum, see :mod:`.query`): about 9.2 million USD.
MAX_SQLITE_SUM_USD = Decimal(INT64_MAX).scaleb(-EXPONENT)

#: The money columns of ``calls`` that have a units twin, hours first.
MONEY_COLUMNS: tuple[str, ...] = ("code_execution_hours", *COST_FIELDS)
UNITS_COLUMNS: tuple[str, ...] = tuple(f"{name}_units" for name in MONEY_COLUMNS)


def to_units(value: Decimal) -> int | None:
    """``value`` × 10¹² as an ``int`` when that is whole and fits 64 bits, else ``None``.

    Not a finite ``Decimal`` (a float, NaN): ``None``; such a row is refused when it is
    written (``money_text``), never stored as units.
    """
    try:
        scaled = value.scaleb(EXPONENT)
        whole = int(scaled)
    except (AttributeError, TypeError, ValueError, OverflowError):
        return None
    if whole != scaled or not -INT64_MAX <= whole <= INT64_MAX:
        return None
    return whole


def from_units(units: int) -> Decimal:
    """The exact ``Decimal`` of ``units`` (``from_units(to_units(v)) == v``)."""
    return Decimal(f"{units}E-{EXPONENT}")  # built from text: exact, no context rounding


_NONE: tuple[None, ...] = (None,) * len(MONEY_COLUMNS)


def units_of(money: Sequence[Decimal | None]) -> Sequence[int | None]:
    """The units of one row's money, given in :data:`MONEY_COLUMNS` order; all ``None`` if any fails."""
    out: list[int | None] = []
    append = out.append
    for value in money:
        if value is None:
            append(None)
        elif not value and type(value) is Decimal:
            append(0)  # zero in any exponent (most components of most calls)
        else:
            units = to_units(value)
            if units is None:
                return _NONE
            append(units)
    return out


def row_units(row: Mapping[str, Any]) -> Sequence[int | None]:
    """The units of a ``calls`` row's money, in :data:`UNITS_COLUMNS` order; all ``None`` if any fails."""
    return units_of([row[name] for name in MONEY_COLUMNS])
