"""The emulator's bill: one row per billed request, priced with ``cachewise.pricing.price``.

``count_tokens`` is free and never appears here. Costs are exact ``Decimal`` values
rendered as decimal strings in :meth:`BillRow.as_dict`; a request whose price cannot be
found (an unpriced model) is still billed, with ``cost`` ``None`` and ``cost_error`` set.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ..errors import PricingError
from ..pricing import Cost, Modifiers, PriceBook, price
from ..usage import Usage

__all__ = ["Bill", "BillRow", "Endpoint"]

Endpoint = Literal["messages", "stream", "batch"]


@dataclass(frozen=True, slots=True)
class BillRow:
    """One billed request."""

    request_id: str
    message_id: str
    time: datetime
    model: str
    workspace: str
    endpoint: Endpoint
    usage: dict[str, Any]
    cost: Cost | None
    cost_error: str | None
    complete: bool = True
    batch_id: str | None = None
    custom_id: str | None = None
    regional: bool = False
    api_key_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        cost: dict[str, str] | None = None
        if self.cost is not None:
            cost = {k: _money(v) for k, v in self.cost.as_dict().items()}
        return {
            "request_id": self.request_id,
            "message_id": self.message_id,
            "time": self.time.isoformat(),
            "model": self.model,
            "workspace": self.workspace,
            "endpoint": self.endpoint,
            "complete": self.complete,
            "batch_id": self.batch_id,
            "custom_id": self.custom_id,
            "regional": self.regional,
            "api_key_id": self.api_key_id,
            "usage": self.usage,
            "cost": cost,
            "cost_total": _money(self.cost.total) if self.cost is not None else None,
            "cost_error": self.cost_error,
            "table_version": self.cost.rates.table_version if self.cost is not None else None,
        }


def _money(value: Decimal) -> str:
    return f"{value.normalize():f}"


class Bill:
    """Thread-safe list of :class:`BillRow`."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book
        self._rows: list[BillRow] = []
        self._lock = threading.Lock()

    def record(
        self,
        *,
        request_id: str,
        message_id: str,
        time: datetime,
        model: str,
        workspace: str,
        endpoint: Endpoint,
        usage: dict[str, Any],
        complete: bool = True,
        batch_id: str | None = None,
        custom_id: str | None = None,
        regional: bool = False,
        api_key_id: str | None = None,
    ) -> BillRow:
        cost: Cost | None = None
        error: str | None = None
        modifiers = Modifiers(batch=endpoint == "batch", regional=regional)
        try:
            cost = price(self.book, Usage.from_api(usage), model, time, modifiers)
        except PricingError as exc:
            error = str(exc)
        row = BillRow(
            request_id,
            message_id,
            time,
            model,
            workspace,
            endpoint,
            usage,
            cost,
            error,
            complete,
            batch_id,
            custom_id,
            regional,
            api_key_id,
        )
        with self._lock:
            self._rows.append(row)
        return row

    def mark_incomplete(self, request_id: str) -> None:
        with self._lock:
            for i, row in enumerate(self._rows):
                if row.request_id == request_id:
                    self._rows[i] = replace(row, complete=False)

    def rows(self) -> list[BillRow]:
        with self._lock:
            return list(self._rows)

    def total(self) -> Decimal:
        return sum((r.cost.total for r in self.rows() if r.cost is not None), Decimal(0))

    def reset(self) -> None:
        with self._lock:
            self._rows.clear()
