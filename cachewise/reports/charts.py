"""Charts of a ledger frame or source (matplotlib, Agg backend): spend by component, savings, hit ratio.

Money becomes ``float`` here and only here, for plotting. Each function returns a
``matplotlib.figure.Figure`` (never shown); :func:`png` turns one into bytes. Days are points on
a category axis, so one day of data still reads; the hit-ratio chart groups by the report's keys.
Needs the ``charts`` extra (``pip install cachewise[charts]``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from .frames import group_keys
from .source import Source, as_source

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["charts_available", "daily_spend_chart", "hit_ratio_chart", "png", "savings_chart"]

_COMPONENTS = (
    ("cost_input", "input"),
    ("cost_cache_write", "cache write"),
    ("cost_cache_read", "cache read"),
    ("cost_output", "output"),
    ("cost_tools", "server tools"),
)


def charts_available() -> bool:
    """Whether matplotlib (the ``charts`` extra) can be imported."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(title: str) -> Figure:
    from matplotlib.figure import Figure  # the OO API: no pyplot state, Agg canvas on save

    figure = Figure(figsize=(8, 3.6), layout="constrained")
    figure.suptitle(title)
    return figure


def _as_float(series: pd.Series) -> pd.Series:
    return series.map(lambda value: 0.0 if value is None else float(value)).astype(float)


def _daily(frame: pd.DataFrame | Source) -> pd.DataFrame:
    table = as_source(frame).spend(["day"]).sort_values("day")
    table["label"] = table["day"].dt.strftime("%Y-%m-%d")
    return table.reset_index(drop=True)


def _days_axis(axes: Any, labels: list[str]) -> None:
    """Days as categories: one day of data is one point in the middle, not one fat bar."""
    axes.set_xticks(range(len(labels)), labels)
    axes.set_xlim(-0.5, max(len(labels), 1) - 0.5)
    axes.tick_params(axis="x", labelrotation=45 if len(labels) > 6 else 0)
    axes.grid(axis="y", alpha=0.3)


def daily_spend_chart(frame: pd.DataFrame | Source) -> Figure:
    """Spend per UTC day by component, one line with points per component and the total
    (priced calls only; days with unpriced calls are marked *)."""
    table = _daily(frame)
    figure = _figure("Daily spend by component (USD)")
    axes = figure.add_subplot()
    x = list(range(len(table)))
    for column, label in _COMPONENTS:
        values = _as_float(table[column])
        if values.any():
            axes.plot(x, values, marker="o", label=label)
    total = _as_float(table["cost_total"])
    if len(table):
        axes.plot(x, total, marker="s", color="black", linewidth=2, label="total")
    for index, complete in enumerate(table["complete"]):
        if not complete:
            axes.annotate("* unpriced calls", (index, float(total.iloc[index])), ha="center", va="bottom")
    axes.set_ylabel("USD")
    axes.set_ylim(bottom=0)
    if len(table):
        axes.legend(loc="upper left", fontsize="small")
    _days_axis(axes, list(table["label"]))
    return figure


def savings_chart(frame: pd.DataFrame | Source) -> Figure:
    """What caching saved per UTC day (points) and the running total (line)."""
    table = _daily(frame)
    figure = _figure("Savings from caching (USD; negative: writes not read back)")
    axes = figure.add_subplot()
    x = list(range(len(table)))
    daily = _as_float(table["savings"])
    axes.scatter(
        x, daily, s=60, zorder=3, label="per day", color=["tab:green" if v >= 0 else "tab:red" for v in daily]
    )
    axes.plot(x, daily.cumsum(), marker="o", color="black", label="cumulative")
    axes.axhline(0, color="grey", linewidth=0.8)
    axes.set_ylabel("USD")
    if len(table):
        axes.legend(loc="upper left", fontsize="small")
    _days_axis(axes, list(table["label"]))
    return figure


def hit_ratio_chart(frame: pd.DataFrame | Source, by: str | Sequence[str] | None = ("model",)) -> Figure:
    """Cache hit ratio (read ÷ prompt tokens) per group of ``by`` (the report's keys)."""
    keys = group_keys(by)
    table = as_source(frame).spend(keys)
    if keys:
        table = table.sort_values(keys, key=lambda column: column.astype(str))
    labels = [" · ".join(_label(r[k]) for k in keys) or "all" for r in table.to_dict("records")]
    figure = _figure(f"Cache hit ratio by {', '.join(keys) or 'all'} (read ÷ prompt tokens)")
    figure.set_figheight(max(2.4, 1.2 + 0.35 * len(labels)))
    axes = figure.add_subplot()
    ratios = table["hit_ratio"].map(lambda value: 0.0 if value is None else float(value)).astype(float)
    axes.barh(range(len(labels)), ratios, color="tab:blue", height=0.6)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_ylim(len(labels) - 0.5, -0.5)
    axes.set_xlim(0, 1)
    for index, value in enumerate(ratios):
        axes.annotate(f"{value:.0%}", (value, index), va="center", xytext=(3, 0), textcoords="offset points")
    return figure


def _label(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
