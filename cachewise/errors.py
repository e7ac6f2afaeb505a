"""The exceptions cachewise raises.

Every exception carries the context a user needs as attributes and says in
its message what to change::

    CachewiseError
    ├── PricingError                 a price could not be found or the table is wrong
    │   ├── UnknownModelError        model id not in any loaded table      (.model)
    │   ├── NoPriceError             model known, no price in force then   (.model, .at)
    │   ├── ModifierNotAvailable     batch / fast / inference_geo not offered (.model, .modifier)
    │   └── PriceTableError          malformed or contradictory table file (.path, .field)
    ├── UsageError                   a usage payload that cannot be normalised (.field)
    ├── LedgerError                  the ledger database or spool
    │   ├── LedgerUnavailable        the database cannot be reached       (.url)
    │   ├── SchemaTooNew             the ledger was written by a newer cachewise
    │   └── SpoolError               the spool file cannot be written or read (.path)
    ├── PlannerError                 the planner could not plan a request
    │   └── TokenCountError          count_tokens failed                   (.status)
    ├── EmulatorError                the local emulator misbehaved or was misused
    ├── BudgetExceeded               a budget would be crossed              (.budget, .spent)
    │   └── UnpricedSpend            spend in the window cannot be priced   (.budget, .calls)
    └── BudgetConfigError            a budget setting is wrong              (.path, .key)
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

__all__ = [
    "BudgetConfigError",
    "BudgetExceeded",
    "CachewiseError",
    "EmulatorError",
    "LedgerError",
    "LedgerUnavailable",
    "ModifierNotAvailable",
    "NoPriceError",
    "PlannerError",
    "PriceTableError",
    "PricingError",
    "SchemaTooNew",
    "SpoolError",
    "TokenCountError",
    "UnknownModelError",
    "UnpricedSpend",
    "UsageError",
]


def _about(name: str, problem: str, value: str | None = None) -> str:
    """``name is value: problem``, or ``name: problem`` when there is no value to show."""
    shown = name if value is None else f"{name} is {value}"
    return f"{shown}: {problem}"


class CachewiseError(Exception):
    """Base class of every error cachewise raises on purpose."""


class PricingError(CachewiseError):
    """A call could not be priced. Never silently priced at zero."""


class UnknownModelError(PricingError):
    def __init__(self, model: str, sources: list[str]) -> None:
        self.model = model
        self.sources = sources
        where = ", ".join(sources) or "no table"
        super().__init__(
            f"no model {model!r} in {where}; add it in a price overlay "
            "(--price-table FILE or CACHEWISE_PRICE_TABLE) or check the spelling"
        )


class _PriceLookupError(PricingError):
    """No usable price for ``.model`` on ``.at`` in ``.source``: what is missing, then what to do."""

    def __init__(self, missing: str, model: str, at: datetime, source: str, advice: str) -> None:
        self.model = model
        self.at = at
        self.source = source
        super().__init__(f"{missing} for {model} on {at.date().isoformat()} in {source}; {advice}")


class NoPriceError(_PriceLookupError):
    def __init__(self, model: str, at: datetime, source: str, what: str = "price") -> None:
        advice = "add one with a 'from' date on or before it, or pass --price-table"
        super().__init__(f"no {what}", model, at, source, advice)


class ModifierNotAvailable(_PriceLookupError):
    def __init__(self, model: str, modifier: str, at: datetime, source: str) -> None:
        self.modifier = modifier
        advice = "the API does not offer it then, or the table lacks it"
        super().__init__(f"{modifier} is not priced", model, at, source, advice)


class PriceTableError(PricingError):
    """A price file that cannot be used: ``.path``, ``.field`` (a path such as
    ``models[0](claude-x).prices[1].from``), ``.problem`` and ``.value`` (the offending value as
    text, ``None`` when there is none to show, e.g. a missing field)."""

    def __init__(self, path: str | Path, field: str, problem: str, value: str | None = None) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        self.value = value
        super().__init__(f"{self.path}: {_about(field, problem, value)}")


class UsageError(CachewiseError):
    """A usage object that cannot be trusted: ``.field`` (``input_tokens``, ``cache_creation.x``,
    ``<root>`` for the object itself) and ``.value`` (as text: ``-5``, ``null``, ``missing``)."""

    def __init__(self, field: str, problem: str, value: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.value = value
        super().__init__(_about("usage" if field == "<root>" else f"usage.{field}", problem, value))


class LedgerError(CachewiseError):
    """The ledger could not do what was asked; recorded rows are kept."""


class LedgerUnavailable(LedgerError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"ledger database {url} is unavailable: {reason}")


class SchemaTooNew(LedgerError):
    def __init__(self, url: str, found: int, supported: int) -> None:
        self.url = url
        self.found = found
        self.supported = supported
        super().__init__(
            f"ledger {url} has schema version {found}, this cachewise supports up to {supported}; "
            "upgrade cachewise to read it"
        )


class SpoolError(LedgerError):
    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        super().__init__(f"spool {self.path}: {reason}")


class PlannerError(CachewiseError):
    """The planner could not produce a plan; the request is sent unplanned."""


class TokenCountError(PlannerError):
    def __init__(self, reason: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(f"count_tokens failed ({status if status is not None else 'no response'}): {reason}")


class EmulatorError(CachewiseError):
    """The emulator was misused (bad control request, unknown batch, ...)."""


class BudgetExceeded(CachewiseError):
    def __init__(self, budget: str, limit: Decimal, spent: Decimal, estimate: Decimal = Decimal(0)) -> None:
        self.budget = budget
        self.limit = limit
        self.spent = spent
        self.estimate = estimate
        super().__init__(
            f"budget {budget!r} of ${limit} would be exceeded: ${spent} spent, "
            f"this request estimated at ${estimate}"
        )


class UnpricedSpend(BudgetExceeded):
    """Calls in a budget's window have no price: the budget cannot be enforced, so it fails closed."""

    def __init__(self, budget: str, limit: Decimal, calls: int, reason: str) -> None:
        self.calls = calls
        self.reason = reason
        CachewiseError.__init__(
            self,
            f"budget {budget!r} of ${limit} cannot be enforced: {calls} call(s) in its window have no "
            f"price ({reason}); add the model to a price overlay (--price-table) or fix the ledger",
        )
        self.budget = budget
        self.limit = limit
        self.spent = Decimal(0)
        self.estimate = Decimal(0)


class BudgetConfigError(CachewiseError):
    """A budget in ``pyproject.toml`` / ``cachewise.toml`` (or on the command line) is wrong."""

    def __init__(self, path: str | Path, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.path}: {_about(key, problem)}")
