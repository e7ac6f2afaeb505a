"""Report frames from a ledger frame: spend, savings, hit ratio, waste and prices, grouped.

Every function takes a ledger frame (``Ledger.to_frame()``) and returns a new
pandas frame; money stays ``Decimal`` (object columns) until display.

Definitions (docs/reports.md):

* ``prompt_tokens`` = input + cache write + cache read tokens;
* ``hit_ratio`` = cache read ÷ prompt tokens (``None`` when there are none);
* ``effective_input_price`` = (cost_input + cost_cache_write + cost_cache_read)
  ÷ prompt tokens of priced rows × 1,000,000, in USD per million tokens;
* money columns add up priced rows only. Unpriced rows (``cost_error`` set) are
  never read as $0: every group counts them in ``unpriced_calls`` and
  ``unpriced_prompt_tokens`` / ``unpriced_output_tokens``, and ``complete`` is false.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .columns import MONEY_OUT, ZERO, check_frame, unpriced_mask
from .waste import annotate_waste

if TYPE_CHECKING:
    from ..ledger.aggregate import GroupSums

__all__ = [
    "MILLION",
    "annotate",
    "call_detail",
    "family_labels",
    "group_keys",
    "prefix_families",
    "spend",
    "table_from_sums",
    "totals",
    "totals_from_table",
    "unpriced",
    "unpriced_from_sums",
]

MILLION = Decimal(1_000_000)
NONE_LABEL = "(none)"

_TOKENS_OUT = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "prompt_tokens",
    "priced_prompt_tokens",
    "unpriced_prompt_tokens",
    "unpriced_output_tokens",
    "wasted_write_tokens",
    "unattributed_write_tokens",
)


def annotate(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with the per-row columns the reports aggregate (idempotent)."""
    if "priced" in frame.columns and "wasted_write_tokens" in frame.columns:
        return frame
    check_frame(frame)
    out = annotate_waste(frame)
    priced = ~unpriced_mask(out)
    out["priced"] = priced
    prompt = (
        out["input_tokens"].astype(np.int64)
        + out["cache_creation_input_tokens"].astype(np.int64)
        + out["cache_read_input_tokens"].astype(np.int64)
    )
    out["prompt_tokens"] = prompt
    out["priced_prompt_tokens"] = prompt.where(priced, 0)
    out["unpriced_prompt_tokens"] = prompt.where(~priced, 0)
    out["unpriced_output_tokens"] = out["output_tokens"].astype(np.int64).where(~priced, 0)
    out["unpriced_calls"] = (~priced).astype(np.int64)

    def money(*names: str) -> pd.Series:
        total = out[names[0]].where(priced, ZERO)
        for name in names[1:]:
            total = total + out[name].where(priced, ZERO)
        result: pd.Series = total.astype(object)
        return result

    out["cost_cache_write"] = money("cost_cache_write_5m", "cost_cache_write_1h")
    out["cost_tools"] = money("cost_web_search", "cost_code_execution")
    for name in ("cost_input", "cost_cache_read", "cost_output", "cost_total", "cost_no_cache", "savings"):
        out[f"_{name}"] = money(name)
    return out


def _key_series(frame: pd.DataFrame, key: str) -> pd.Series:
    started: pd.Series = frame["started_at"]
    if key == "day":
        day: pd.Series = started.dt.floor("D").rename("day")
        return day
    if key == "month":
        month: pd.Series = started.dt.strftime("%Y-%m").rename("month")
        return month
    if key.startswith("tag:"):
        name = key.removeprefix("tag:")
        if not name:
            raise ValueError("'tag:' needs a tag name, e.g. tag:feature")
        return (
            frame["tags"]
            .map(lambda tags: (tags or {}).get(name), na_action="ignore")
            .fillna(NONE_LABEL)
            .astype(str)
            .rename(key)
        )
    if key not in frame.columns:
        raise ValueError(f"cannot group by {key!r}: use day, month, tag:NAME or a ledger column")
    return frame[key].astype(object).where(frame[key].notna(), NONE_LABEL).rename(key)


def group_keys(by: str | Sequence[str] | None) -> list[str]:
    """``"model,tag:feature"`` or a list of keys, as a list."""
    if by is None:
        return []
    if isinstance(by, str):
        return [part.strip() for part in by.split(",") if part.strip()]
    return list(by)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    out = num.astype(float) / den.astype(float).where(den > 0)
    result: pd.Series = out.astype(object).where(den > 0, None)
    return result


def _finish(grouped: pd.DataFrame) -> pd.DataFrame:
    grouped["hit_ratio"] = _ratio(grouped["cache_read_input_tokens"], grouped["prompt_tokens"])
    grouped["waste_ratio"] = _ratio(grouped["wasted_write_tokens"], grouped["cache_creation_input_tokens"])
    prices: list[Decimal | None] = []
    for tokens, cin, cwrite, cread in zip(
        grouped["priced_prompt_tokens"],
        grouped["cost_input"],
        grouped["cost_cache_write"],
        grouped["cost_cache_read"],
        strict=True,
    ):
        prices.append((cin + cwrite + cread) * MILLION / Decimal(int(tokens)) if tokens else None)
    grouped["effective_input_price"] = pd.Series(prices, index=grouped.index, dtype=object)
    grouped["complete"] = grouped["unpriced_calls"] == 0
    # A group with no priced call has no known cost: None, never $0.
    nothing_priced = grouped["unpriced_calls"] == grouped["calls"]
    for name in MONEY_OUT:
        grouped[name] = grouped[name].where(~nothing_priced, None)
    return grouped


def spend(frame: pd.DataFrame, by: str | Sequence[str] | None = ("model",)) -> pd.DataFrame:
    """Spend, savings, tokens, hit ratio, waste and effective price per group of ``by``.

    Keys: ``model``, ``day`` (UTC), ``month``, ``tag:NAME`` (missing tag: ``(none)``) or any
    ledger column. No keys: one row for everything. Sorted by ``cost_total``, highest first.
    """
    rows = annotate(frame)
    keys = group_keys(by)
    key_frame = pd.DataFrame({key: _key_series(rows, key) for key in keys}, index=rows.index)
    if not keys:
        key_frame["_all"] = "all"
    names = list(key_frame.columns)
    grouped = rows.groupby([key_frame[name] for name in names], sort=True, dropna=False)
    codes = grouped.ngroup().to_numpy()
    count = int(codes.max()) + 1 if len(codes) else 0
    index = grouped.size().index
    result = pd.DataFrame(index=index)
    result["calls"] = grouped.size().to_numpy()
    result["unpriced_calls"] = grouped["unpriced_calls"].sum().to_numpy()
    for name in _TOKENS_OUT:
        result[name] = grouped[name].sum().to_numpy().astype(np.int64)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(count + 1))
    for name in MONEY_OUT:
        source = name if name in ("cost_cache_write", "cost_tools", "wasted_write_cost") else f"_{name}"
        values = rows[source].to_numpy(dtype=object)[order]
        # Exact: numpy adds the Decimal objects of each group with Python's own +.
        sums = np.add.reduceat(values, bounds[:-1]) if count else np.empty(0, dtype=object)
        result[name] = pd.Series(list(sums), index=result.index, dtype=object)
    result = _finish(result).reset_index()
    if not keys:
        result = result.drop(columns=["_all"])
    return _costliest_first(result)


def _costliest_first(result: pd.DataFrame) -> pd.DataFrame:
    if len(result):
        result["_sort"] = result["cost_total"].map(lambda v: -1.0 if v is None else float(v))
        result = result.sort_values("_sort", ascending=False, kind="stable").drop(columns="_sort")
    return result.reset_index(drop=True)


def _key_column(values: list[Any], key: str) -> Any:
    if key == "day":
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True).dt.as_unit("ns")
    if key == "month" or key.startswith("tag:"):
        return pd.Series([NONE_LABEL if v is None else str(v) for v in values], dtype=object)
    return pd.Series([NONE_LABEL if v is None else v for v in values], dtype=object)


def table_from_sums(groups: Sequence[GroupSums], by: str | Sequence[str] | None = ("model",)) -> pd.DataFrame:
    """The :func:`spend` table from sums grouped in SQL (:func:`cachewise.ledger.aggregate.group_sums`
    over the keys ``by``): the same columns, figures and order as :func:`spend` of the rows."""
    keys = group_keys(by)
    ordered = sorted(groups, key=lambda group: tuple(NONE_LABEL if v is None else v for v in group.key))
    result = pd.DataFrame(
        {key: _key_column([group.key[i] for group in ordered], key) for i, key in enumerate(keys)}
    )
    if not keys:
        result = pd.DataFrame(index=range(len(ordered)))

    def tokens(name: str) -> np.ndarray[Any, Any]:
        return np.array([group.tokens[name] for group in ordered], dtype=np.int64)

    def decimals(values: list[Decimal]) -> pd.Series:
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return pd.Series(column, index=result.index, dtype=object)

    result["calls"] = np.array([group.calls for group in ordered], dtype=np.int64)
    result["unpriced_calls"] = np.array([group.unpriced_calls for group in ordered], dtype=np.int64)
    derived = {
        "prompt_tokens": lambda g: (
            g.tokens["input_tokens"]
            + g.tokens["cache_creation_input_tokens"]
            + g.tokens["cache_read_input_tokens"]
        ),
        "wasted_write_tokens": lambda g: g.tokens["wasted_5m_tokens"] + g.tokens["wasted_1h_tokens"],
    }
    for name in _TOKENS_OUT:
        if name in derived:
            result[name] = np.array([derived[name](g) for g in ordered], dtype=np.int64)
        elif name == "priced_prompt_tokens":
            result[name] = result["prompt_tokens"] - tokens("unpriced_prompt_tokens")
        else:
            result[name] = tokens(name)
    combined = {
        "cost_cache_write": ("cost_cache_write_5m", "cost_cache_write_1h"),
        "cost_tools": ("cost_web_search", "cost_code_execution"),
    }
    for name in MONEY_OUT:
        parts = combined.get(name, (name,))
        result[name] = decimals([sum((g.money[part] for part in parts), ZERO) for g in ordered])
    return _costliest_first(_finish(result))


def unpriced_from_sums(groups: Sequence[GroupSums], model: int, error: int) -> pd.DataFrame:
    """The :func:`unpriced` table from sums grouped in SQL with the model at key position
    ``model`` and ``cost_error`` at ``error``."""
    columns = ["model", "cost_error", "calls", "prompt_tokens", "output_tokens"]
    found: dict[tuple[str, str], list[int]] = {}
    for group in groups:
        if not group.unpriced_calls:
            continue
        reason = group.key[error]
        label = (str(group.key[model]), "no cost recorded" if reason is None else str(reason))
        counts = found.setdefault(label, [0, 0, 0])
        counts[0] += group.unpriced_calls
        counts[1] += group.tokens["unpriced_prompt_tokens"]
        counts[2] += group.tokens["unpriced_output_tokens"]
    if not found:
        return pd.DataFrame(columns=columns)
    rows = [[*label, *counts] for label, counts in sorted(found.items())]
    out = pd.DataFrame(rows, columns=columns)
    for name in columns[2:]:
        out[name] = out[name].astype(np.int64)
    return out


def totals(frame: pd.DataFrame) -> dict[str, Any]:
    """One dict for the whole frame (the columns of :func:`spend` with no keys)."""
    return totals_from_table(spend(frame, by=()))


def totals_from_table(table: pd.DataFrame) -> dict[str, Any]:
    """The one row of a :func:`spend` table with no keys as a dict (no row: no calls, $0)."""
    if not len(table):  # no calls: exactly $0, no ratio
        counts = dict.fromkeys(("calls", "unpriced_calls", *_TOKENS_OUT), 0)
        money = dict.fromkeys(MONEY_OUT, ZERO)
        ratios = dict.fromkeys(("hit_ratio", "waste_ratio", "effective_input_price"))
        return counts | money | ratios | {"complete": True}
    return {str(k): v for k, v in table.iloc[0].to_dict().items()}


def prefix_families(frame: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The ``top`` costliest prefix families (rows sharing a ``prefix_hash``), costliest first."""
    rows = annotate(frame)
    rows = rows[rows["prefix_hash"].notna()]
    return spend(rows, by=["prefix_hash"]).head(top).reset_index(drop=True)


def family_labels(frame: pd.DataFrame) -> dict[str, str]:
    """Each prefix family's most common model and most common tag (``key=value``; ties: the
    smallest), joined by `` · ``."""
    labels: dict[str, str] = {}
    rows = frame[frame["prefix_hash"].notna()]
    for prefix, group in rows.groupby("prefix_hash", sort=False):
        parts = [str(group["model"].mode().iloc[0])]
        tags = [f"{k}={v}" for t in group["tags"] if isinstance(t, dict) for k, v in sorted(t.items())]
        if tags:
            parts.append(pd.Series(tags).mode().iloc[0])
        labels[str(prefix)] = " · ".join(parts)
    return labels


def unpriced(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that could not be priced, per model and error: count and tokens (never a cost)."""
    rows = annotate(frame)
    bad = rows[~rows["priced"]]
    columns = ["model", "cost_error", "calls", "prompt_tokens", "output_tokens"]
    if not len(bad):
        return pd.DataFrame(columns=columns)
    bad = bad.assign(cost_error=bad["cost_error"].fillna("no cost recorded"))
    out = (
        bad.groupby(["model", "cost_error"], sort=True)
        .agg(
            calls=("prompt_tokens", "size"),
            prompt_tokens=("prompt_tokens", "sum"),
            output_tokens=("output_tokens", "sum"),
        )
        .reset_index()
    )
    return out[columns]


_DETAIL = (
    "started_at",
    "request_id",
    "model",
    "status",
    "prefix_hash",
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "wasted_write_tokens",
    "cost_total",
    "cost_no_cache",
    "savings",
    "cost_error",
    "tags",
)


def call_detail(frame: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
    """One row per call, newest first, with its tokens, cost, savings and waste."""
    rows = annotate(frame)
    columns = [name for name in _DETAIL if name in rows.columns]
    out = rows.sort_values("started_at", ascending=False, kind="stable")[columns]
    if limit is not None:
        out = out.head(limit)
    return out.reset_index(drop=True)
