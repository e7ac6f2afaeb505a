"""Price many usages at once, exactly, for reports over large ledgers.

Rows are grouped by (model, UTC day, batch, fast, US residency); each group looks
its rates up once. Rates are scaled to whole micro-dollars per million tokens
(that is, pico-dollars per token), so every per-row cost is an exact ``int64``
number of pico-dollars. Sums are taken in Python integers, and converted to
``Decimal`` dollars only at the end. A rate that is not a whole number of
micro-dollars (a fast-mode ratio with a repeating decimal) sends its group
through the exact per-row ``Decimal`` path instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import cast

import numpy as np
import pandas as pd

from ..errors import PricingError
from ..usage import Usage
from .book import PriceBook
from .cost import Modifiers, price

__all__ = ["COMPONENTS", "PICO", "picos_to_dollars", "price_frame"]

PICO = Decimal(10) ** 12
_SCALE = Decimal(10) ** 6
_INT64_SAFE = 2**62

# (cost column, token column, rate attribute)
COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("cost_input", "input_tokens", "input"),
    ("cost_cache_write_5m", "ephemeral_5m_input_tokens", "cache_write_5m"),
    ("cost_cache_write_1h", "ephemeral_1h_input_tokens", "cache_write_1h"),
    ("cost_cache_read", "cache_read_input_tokens", "cache_read"),
    ("cost_output", "output_tokens", "output"),
)
_TOKEN_COLUMNS = [token for _, token, _ in COMPONENTS]


def picos_to_dollars(values: Iterable[int] | pd.Series | np.ndarray) -> Decimal:
    """Exact sum of pico-dollar integers, in dollars (summed in int64 chunks that cannot overflow)."""
    array = np.asarray(values if not isinstance(values, pd.Series) else values.to_numpy(), dtype=np.int64)
    total = sum(int(chunk.sum()) for chunk in np.array_split(array, max(1, array.size // 1024)))
    return Decimal(total) / PICO


def _scaled_per_request(per_thousand: Decimal) -> int:
    """Pico-dollars per request from a USD-per-1,000-requests price."""
    return int(per_thousand * PICO / 1000)


def _scaled(rate: Decimal) -> int | None:
    scaled = rate * _SCALE
    return int(scaled) if scaled == scaled.to_integral_value() else None


def _modifier_columns(frame: pd.DataFrame) -> pd.DataFrame:
    def col(name: str) -> pd.Series:
        if name in frame:
            return frame[name].astype(object).where(frame[name].notna(), None)
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)

    batch = col("service_tier") == "batch"
    if "batch" in frame:
        batch = batch | frame["batch"].fillna(False).astype(bool)
    return pd.DataFrame(
        {
            "model": frame["model"].astype(str),
            "day": pd.to_datetime(frame["started_at"], utc=True).dt.floor("D"),
            "batch": batch.astype(bool),
            "fast": (col("speed") == "fast").astype(bool),
            "us": (col("inference_geo") == "us").astype(bool),
        },
        index=frame.index,
    )


def price_frame(frame: pd.DataFrame, book: PriceBook) -> pd.DataFrame:
    """Per-row costs in exact integer pico-dollars (``int64``), plus ``cost_error`` where unpriceable.

    ``frame`` needs ``model``, ``started_at`` and the five token columns with API
    spellings; ``service_tier``, ``speed``, ``inference_geo`` and ``web_search_requests``
    are used when present. Returned columns: every ``cost_*`` of :data:`COMPONENTS`,
    ``cost_web_search``, ``cost_total``, ``cost_no_cache`` (pico-dollars) and
    ``cost_error`` (``None`` or the message).
    """
    size = len(frame)
    keys = _modifier_columns(frame).reset_index(drop=True)
    tokens = np.stack([frame[t].fillna(0).astype(np.int64).to_numpy() for t in _TOKEN_COLUMNS], axis=1)
    prompt = tokens[:, :4].sum(axis=1)
    searches = (
        frame["web_search_requests"].fillna(0).astype(np.int64).to_numpy()
        if "web_search_requests" in frame
        else np.zeros(size, dtype=np.int64)
    )
    grouped = keys.groupby(["model", "day", "batch", "fast", "us"], sort=False)
    codes = grouped.ngroup().to_numpy()
    groups = [cast(tuple[str, pd.Timestamp, bool, bool, bool], key) for key in grouped.groups]
    # rates[g, k, c]: pico-dollars per token of component c for group g in tier k;
    # bounds[g, k]: tier k applies when prompt > bounds[g, k] (k >= 1).
    width = 1 + max((len(_tier_bounds(book, str(key[0]))) for key in groups), default=0)
    rates = np.zeros((len(groups), width, len(COMPONENTS)), dtype=np.int64)
    bounds = np.full((len(groups), width), np.iinfo(np.int64).max, dtype=np.int64)
    per_search = np.zeros(len(groups), dtype=np.int64)
    exact = np.zeros(len(groups), dtype=bool)
    errors = np.full(size, None, dtype=object)
    for g, key in enumerate(groups):
        model, day, batch, fast, us = key
        at = pd.Timestamp(day).to_pydatetime()
        try:
            tiers = _tier_bounds(book, str(model))
            for k, above in enumerate([0, *tiers]):
                applied = book.rates(
                    str(model),
                    at,
                    prompt_tokens=above + (1 if above else 0),
                    batch=bool(batch),
                    fast=bool(fast),
                    us_residency=bool(us),
                )
                scaled = [_scaled(getattr(applied, attr)) for _, _, attr in COMPONENTS]
                if any(v is None for v in scaled):
                    exact[g] = True
                rates[g, k] = [v or 0 for v in scaled]
                bounds[g, k] = above if k else -1
                per_search[g] = _scaled_per_request(applied.web_search_per_1k)
        except PricingError as exc:  # recorded per row, never priced as zero
            errors[codes == g] = str(exc)
            rates[g] = 0
    choice = (prompt[:, None] > bounds[codes]).sum(axis=1) - 1
    row_rates = rates[codes, choice]
    if int(prompt.max(initial=0)) * int(rates.max(initial=0)) >= _INT64_SAFE:
        exact[:] = True  # would overflow int64: price every row with Decimal
    costs = tokens * row_rates
    web_cost = searches * per_search[codes]
    no_cache = prompt * row_rates[:, 0] + costs[:, 4] + web_cost
    out = {name: costs[:, i] for i, (name, _, _) in enumerate(COMPONENTS)}
    slow_rows = np.flatnonzero(exact[codes] & np.array([e is None for e in errors], dtype=bool))
    if slow_rows.size:
        _price_rows_exactly(frame, slow_rows, book, out, web_cost, no_cache, errors)
    result = pd.DataFrame(out, index=frame.index)
    result["cost_web_search"] = web_cost
    result["cost_total"] = costs.sum(axis=1) + web_cost
    result["cost_no_cache"] = no_cache
    result["cost_error"] = pd.Series(errors, index=frame.index, dtype=object)
    return result


def _tier_bounds(book: PriceBook, model: str) -> list[int]:
    try:
        entry = book.resolve(model)
    except PricingError:
        return []
    return sorted({t.above for t in entry.long_context} | {t.above for f in entry.fast for t in f.tiers})


def _price_rows_exactly(
    frame: pd.DataFrame,
    rows: np.ndarray,
    book: PriceBook,
    out: dict[str, np.ndarray],
    web_cost: np.ndarray,
    no_cache: np.ndarray,
    errors: np.ndarray,
) -> None:
    for row in rows:
        record = frame.iloc[int(row)]
        usage = Usage(
            input_tokens=int(record["input_tokens"]),
            cache_read_input_tokens=int(record["cache_read_input_tokens"]),
            ephemeral_5m_input_tokens=int(record["ephemeral_5m_input_tokens"]),
            ephemeral_1h_input_tokens=int(record["ephemeral_1h_input_tokens"]),
            output_tokens=int(record["output_tokens"]),
            web_search_requests=int(record.get("web_search_requests", 0) or 0),
            service_tier=record.get("service_tier"),
            speed=record.get("speed"),
            inference_geo=record.get("inference_geo"),
        )
        try:
            cost = price(
                book,
                usage,
                str(record["model"]),
                pd.Timestamp(record["started_at"]).to_pydatetime(),
                Modifiers(),
            )
        except PricingError as exc:
            errors[row] = str(exc)
            continue
        web_cost[row] = int(cost.web_search * PICO)
        for name, _, _ in COMPONENTS:
            picos = getattr(cost, name.removeprefix("cost_")) * PICO
            out[name][row] = int(picos)  # may truncate below a pico-dollar; documented
        no_cache[row] = int(cost.no_cache_total * PICO)
