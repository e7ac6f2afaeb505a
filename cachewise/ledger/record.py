"""One ledger row: :class:`CallRecord`, what a billed API request used and cost.

Build it with :meth:`CallRecord.priced`, which prices the usage at the call's own UTC
time (docs/api-notes.md §8) and, when pricing fails, keeps the error text and leaves every
cost ``None`` — an unknown model is never $0. The record converts to a database row,
to a spool line (JSON) and back without losing a digit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from ..breakpoints import Breakpoint
from ..errors import PricingError
from ..pricing import AppliedRates, Cost, Modifiers, PriceBook, price
from ..pricing.cost import COST_FIELDS as COST_COLUMNS  # = schema.COST_COLUMNS, without SQLAlchemy
from ..tags import current as current_tags
from ..usage import Usage, UsageReading
from .privacy import redact

__all__ = ["ENDPOINTS", "STATUSES", "Breakpoint", "CallRecord", "CostBreakdown", "Endpoint", "Status"]

Status = Literal["ok", "error", "incomplete"]
Endpoint = Literal["messages", "stream", "batch"]
STATUSES: tuple[str, ...] = ("ok", "error", "incomplete")
ENDPOINTS: tuple[str, ...] = ("messages", "stream", "batch")


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """The cost of one call in USD, component by component, exactly as priced."""

    cost_input: Decimal
    cost_cache_write_5m: Decimal
    cost_cache_write_1h: Decimal
    cost_cache_read: Decimal
    cost_output: Decimal
    cost_web_search: Decimal
    cost_code_execution: Decimal
    cost_total: Decimal
    cost_no_cache: Decimal
    savings: Decimal

    @classmethod
    def from_cost(cls, cost: Cost) -> CostBreakdown:
        return cls(**cost.as_dict())

    def as_dict(self) -> dict[str, Decimal]:
        return {name: getattr(self, name) for name in COST_COLUMNS}


#: :func:`rates_dict` of the rates objects met lately, by ``id``: each entry holds the object, so
#: its ``id`` is not reused while the entry lives (a price book hands out one object per model,
#: day and tier: :meth:`~cachewise.pricing.PriceBook.rates`). Emptied when full.
_RATES_TEXT: dict[int, tuple[AppliedRates, dict[str, Any]]] = {}
_RATES_TEXT_MAX = 1024


def rates_dict(rates: AppliedRates) -> dict[str, Any]:
    """The applied rates as JSON-safe values (decimals and dates as strings); a new dict each call."""
    known = _RATES_TEXT.get(id(rates))
    if known is None or known[0] is not rates:
        if len(_RATES_TEXT) >= _RATES_TEXT_MAX:
            _RATES_TEXT.clear()
        known = _RATES_TEXT[id(rates)] = (rates, _rates_text(rates))
    return {key: value.copy() if type(value) is list else value for key, value in known[1].items()}


def _rates_text(rates: AppliedRates) -> dict[str, Any]:
    from .types import money_text  # with SQLAlchemy's column types: imported on use, not with the row

    out: dict[str, Any] = {}
    for key, value in rates.as_dict().items():
        if isinstance(value, Decimal):
            out[key] = money_text(value)
        elif isinstance(value, tuple):
            out[key] = list(value)
        elif hasattr(value, "isoformat"):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def _utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None:
        raise ValueError(f"{name} {moment.isoformat()} has no timezone; pass an aware UTC datetime")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One billed API request: identity, timing, usage, planner decisions, tags and cost.

    ``cost`` is ``None`` when pricing failed (``cost_error`` says why) or was not attempted.
    ``tags`` defaults to the tags active where the record is built (:mod:`cachewise.tags`).
    """

    request_id: str
    model: str
    started_at: datetime
    usage: Usage = field(default_factory=Usage)
    message_id: str | None = None
    endpoint: Endpoint = "messages"
    status: Status = "ok"
    error_type: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    batch_id: str | None = None
    custom_id: str | None = None
    incomplete: bool = False
    planned: bool = False
    breakpoints: tuple[Breakpoint, ...] = ()
    prefix_hash: str | None = None
    tags: Mapping[str, str] = field(default_factory=current_tags)
    price_table_version: str | None = None
    rates: Mapping[str, Any] | None = None
    cost: CostBreakdown | None = None
    cost_error: str | None = None
    prompt: str | None = None
    raw_usage: str | None = None
    #: where the call was served: ``anthropic`` (the Claude API), ``bedrock`` or ``vertex``
    #: (cachewise.pricing.platforms); ``None`` on rows recorded before ledger step 0006.
    provider: str | None = "anthropic"
    miss_reason: str | None = None
    miss_detail: Mapping[str, Any] | None = None
    api_miss_reason: str | None = None
    api_missed_tokens: int | None = None
    replay: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.request_id, str) or not self.request_id:
            raise ValueError(f"request_id must be a non-empty string, got {self.request_id!r}")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty string, got {self.model!r}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {self.endpoint!r}")
        object.__setattr__(self, "started_at", _utc(self.started_at, "started_at"))
        # One value each for tier, geo and speed: the record's, else the usage's; the usage mirrors it.
        u = self.usage
        tier = self.service_tier or u.service_tier
        geo = self.inference_geo or u.inference_geo
        speed = self.speed or u.speed
        if (tier, geo, speed) != (self.service_tier, self.inference_geo, self.speed):
            object.__setattr__(self, "service_tier", tier)
            object.__setattr__(self, "inference_geo", geo)
            object.__setattr__(self, "speed", speed)
        if (tier, geo, speed) != (u.service_tier, u.inference_geo, u.speed):
            object.__setattr__(self, "usage", replace(u, service_tier=tier, inference_geo=geo, speed=speed))
        if self.status == "incomplete" and not self.incomplete:
            object.__setattr__(self, "incomplete", True)
        if not isinstance(self.breakpoints, tuple):
            object.__setattr__(self, "breakpoints", tuple(Breakpoint.coerce(b) for b in self.breakpoints))
        if self.cost is not None and self.cost_error is not None:
            raise ValueError("a record has either a cost or a cost_error, not both")

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def priced(
        cls,
        *,
        usage: Usage | UsageReading,
        model: str,
        started_at: datetime,
        request_id: str,
        book: PriceBook | None = None,
        modifiers: Modifiers | None = None,
        breakpoints: Sequence[Breakpoint | Mapping[str, Any]] = (),
        **rest: Any,
    ) -> CallRecord:
        """A record priced with ``book`` (default: :meth:`PriceBook.default`) at ``started_at``.

        A :class:`~cachewise.errors.PricingError` is stored as ``cost_error``; costs stay ``None``.
        ``usage`` may be a :class:`~cachewise.usage.UsageReading`: one that cannot be trusted is
        never priced (``cost_error`` names the field and value, ``raw_usage`` keeps what was
        received), so the call counts as unpriced, never as $0. ``service_tier``, ``speed`` and
        ``inference_geo`` come from the usage, else the modifiers; a request for fast mode after
        the model's fast mode ended, whose usage reports no speed, is recorded as ``standard``.
        """
        reading = usage if isinstance(usage, UsageReading) else UsageReading(usage)
        used_usage = reading.usage
        mods = modifiers or Modifiers()
        rest.setdefault("service_tier", used_usage.service_tier)
        rest.setdefault("inference_geo", used_usage.inference_geo or mods.inference_geo)
        if mods.batch or used_usage.service_tier == "batch":
            rest.setdefault("endpoint", "batch")
        rest.setdefault("raw_usage", reading.raw)
        points = tuple(Breakpoint.coerce(b) for b in breakpoints)
        speed = used_usage.speed or mods.speed
        common: dict[str, Any] = {
            "request_id": request_id,
            "model": model,
            "started_at": started_at,
            "usage": used_usage,
            "breakpoints": points,
        }
        if not reading.trusted:
            rest.setdefault("speed", speed)
            return cls(**common, cost_error=reading.cost_error, **rest)
        try:
            used = book if book is not None else PriceBook.default()
            cost = price(used, used_usage, model, started_at, mods)
        except PricingError as exc:
            rest.setdefault("speed", speed)
            return cls(
                **common,
                cost_error=str(exc),
                price_table_version=book.version if book is not None else None,
                **rest,
            )
        if speed == "fast" and not cost.rates.fast:
            speed = "standard"  # fast mode had ended: the API ran it at standard speed and price
        rest.setdefault("speed", speed)
        rates = rates_dict(cost.rates)
        if used_usage.notes:
            rates["uncertain"] = [*rates.get("uncertain", []), *used_usage.notes]
        return cls(
            **common,
            cost=CostBreakdown.from_cost(cost),
            rates=rates,
            price_table_version=cost.rates.table_version,
            **rest,
        )

    def modifiers(self) -> Modifiers:
        """The price modifiers this call was billed under (used when repricing)."""
        return Modifiers(
            batch=self.endpoint == "batch" or self.service_tier == "batch",
            speed=self.speed,
            inference_geo=self.inference_geo,
        )

    def without_prompt(self) -> CallRecord:
        return self if self.prompt is None else replace(self, prompt=None)

    # -- rows --------------------------------------------------------------------------------

    def to_row(self) -> dict[str, Any]:
        """Column values for the ``calls`` table (free text redacted; no ``id``/``recorded_at``)."""
        u = self.usage
        row: dict[str, Any] = {
            "request_id": self.request_id,
            "message_id": self.message_id,
            "model": self.model,
            "started_at": self.started_at,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "status": self.status,
            "error_type": redact(self.error_type),
            "endpoint": self.endpoint,
            "service_tier": self.service_tier,
            "inference_geo": self.inference_geo,
            "speed": self.speed,
            "batch_id": self.batch_id,
            "custom_id": self.custom_id,
            "input_tokens": u.input_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "ephemeral_5m_input_tokens": u.ephemeral_5m_input_tokens,
            "ephemeral_1h_input_tokens": u.ephemeral_1h_input_tokens,
            "output_tokens": u.output_tokens,
            "web_search_requests": u.web_search_requests,
            "web_fetch_requests": u.web_fetch_requests,
            "code_execution_hours": u.code_execution_hours,
            "ttl_split_missing": u.ttl_split_missing,
            "incomplete": self.incomplete,
            "planned": self.planned,
            "breakpoints": [b.as_dict() for b in self.breakpoints],
            "prefix_hash": self.prefix_hash,
            "tags": {k: redact(v) for k, v in self.tags.items()},
            "price_table_version": self.price_table_version,
            "rates": dict(self.rates) if self.rates is not None else None,
            "cost_error": redact(self.cost_error),
            "prompt": redact(self.prompt),
            "raw_usage": redact(self.raw_usage),
            "provider": self.provider,
            **self._miss_row(),
        }
        if self.cost is not None:
            row.update(self.cost.as_dict())
        else:
            row.update(dict.fromkeys(COST_COLUMNS))
        return row

    def _miss_row(self) -> dict[str, Any]:
        """The miss columns (step 0007, docs/why.md): hashes, levels, positions and counts only."""
        return {
            "miss_reason": self.miss_reason,
            "miss_detail": dict(self.miss_detail) if self.miss_detail is not None else None,
            "api_miss_reason": self.api_miss_reason,
            "api_missed_tokens": self.api_missed_tokens,
            "replay": dict(self.replay) if self.replay is not None else None,
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> CallRecord:
        """Rebuild a record from a ``calls`` row (or a decoded spool line)."""
        costs = [row.get(name) for name in COST_COLUMNS]
        cost = CostBreakdown(*costs) if all(c is not None for c in costs) else None  # type: ignore[arg-type]
        usage = Usage(
            input_tokens=int(row.get("input_tokens") or 0),
            cache_read_input_tokens=int(row.get("cache_read_input_tokens") or 0),
            ephemeral_5m_input_tokens=int(row.get("ephemeral_5m_input_tokens") or 0),
            ephemeral_1h_input_tokens=int(row.get("ephemeral_1h_input_tokens") or 0),
            output_tokens=int(row.get("output_tokens") or 0),
            web_search_requests=int(row.get("web_search_requests") or 0),
            web_fetch_requests=int(row.get("web_fetch_requests") or 0),
            code_execution_hours=row.get("code_execution_hours") or Decimal(0),
            service_tier=row.get("service_tier"),
            inference_geo=row.get("inference_geo"),
            speed=row.get("speed"),
            ttl_split_missing=bool(row.get("ttl_split_missing")),
        )
        return cls(
            request_id=row["request_id"],
            model=row["model"],
            started_at=row["started_at"],
            usage=usage,
            message_id=row.get("message_id"),
            endpoint=row.get("endpoint") or "messages",
            status=row.get("status") or "ok",
            error_type=row.get("error_type"),
            latency_ms=row.get("latency_ms"),
            ttft_ms=row.get("ttft_ms"),
            service_tier=row.get("service_tier"),
            inference_geo=row.get("inference_geo"),
            speed=row.get("speed"),
            batch_id=row.get("batch_id"),
            custom_id=row.get("custom_id"),
            incomplete=bool(row.get("incomplete")),
            planned=bool(row.get("planned")),
            breakpoints=tuple(Breakpoint.coerce(b) for b in row.get("breakpoints") or ()),
            prefix_hash=row.get("prefix_hash"),
            tags=dict(row.get("tags") or {}),
            price_table_version=row.get("price_table_version"),
            rates=row.get("rates"),
            cost=cost,
            cost_error=row.get("cost_error"),
            prompt=row.get("prompt"),
            raw_usage=row.get("raw_usage"),
            provider=row.get("provider"),
            miss_reason=row.get("miss_reason"),
            miss_detail=row.get("miss_detail"),
            api_miss_reason=row.get("api_miss_reason"),
            api_missed_tokens=row.get("api_missed_tokens"),
            replay=row.get("replay"),
        )

    # -- JSON (spool lines) --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict: decimals as exact strings, times as ISO 8601 UTC."""
        from .types import money_text

        out: dict[str, Any] = {}
        for key, value in self.to_row().items():
            if isinstance(value, Decimal):
                out[key] = money_text(value)
            elif isinstance(value, datetime):
                out[key] = value.isoformat()
            else:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallRecord:
        row = dict(data)
        row["started_at"] = datetime.fromisoformat(row["started_at"])
        for name in (*COST_COLUMNS, "code_execution_hours"):
            if row.get(name) is not None:
                row[name] = Decimal(row[name])
        return cls.from_row(row)

    def content_hash(self) -> str:
        """sha256 of the record's content, used to spot a second, different record under one request_id.

        Canonical: decimals are compared by value (``0.030`` equals ``0.03``), keys sorted.
        """
        payload = json.dumps(
            _canonical(self.to_row()), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value
