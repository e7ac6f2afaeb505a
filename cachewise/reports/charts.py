"""Charts of a ledger frame (matplotlib, Agg backend): spend by component, savings, hit ratio.

Money becomes ``float`` here and only here, for plotting. Each function returns a
``matplotlib.figure.Figure`` (never shown); :func:`png` turns one into bytes.
Needs the ``charts`` extra (``pip install cachewise[charts]``).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pandas as pd

from .frames import spend

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


def _daily(frame: pd.DataFrame) -> pd.DataFrame:
    table = spend(frame, by=["day"]).sort_values("day")
    table["label"] = table["day"].dt.strftime("%Y-%m-%d")
    return table.reset_index(drop=True)


def daily_spend_chart(frame: pd.DataFrame) -> Figure:
    """Spend per UTC day, stacked by component (priced calls only; unpriced days are marked *)."""
    table = _daily(frame)
    figure = _figure("Daily spend by component (USD)")
    axes = figure.add_subplot()
    bottom = pd.Series(0.0, index=table.index)
    for column, label in _COMPONENTS:
        values = _as_float(table[column])
        if values.any():
            axes.bar(table["label"], values, bottom=bottom, label=label)
            bottom = bottom + values
    for index, complete in enumerate(table["complete"]):
        if not complete:
            axes.annotate("* unpriced calls", (index, float(bottom.iloc[index])), ha="center", va="bottom")
    axes.set_ylabel("USD")
    if len(table):
        axes.legend(loc="upper left", fontsize="small")
    axes.tick_params(axis="x", labelrotation=45)
    return figure


def savings_chart(frame: pd.DataFrame) -> Figure:
    """What caching saved per UTC day, and the running total."""
    table = _daily(frame)
    figure = _figure("Savings from caching (USD; negative: writes not read back)")
    axes = figure.add_subplot()
    daily = _as_float(table["savings"])
    axes.bar(
        table["label"], daily, label="per day", color=["tab:green" if v >= 0 else "tab:red" for v in daily]
    )
    axes.plot(table["label"], daily.cumsum(), marker="o", color="black", label="cumulative")
    axes.axhline(0, color="grey", linewidth=0.8)
    axes.set_ylabel("USD")
    if len(table):
        axes.legend(loc="upper left", fontsize="small")
    axes.tick_params(axis="x", labelrotation=45)
    return figure


def hit_ratio_chart(frame: pd.DataFrame) -> Figure:
    """Cache hit ratio (read ÷ prompt tokens) per model."""
    table = spend(frame, by=["model"]).sort_values("model")
    figure = _figure("Cache hit ratio by model (read ÷ prompt tokens)")
    axes = figure.add_subplot()
    ratios = table["hit_ratio"].map(lambda value: 0.0 if value is None else float(value)).astype(float)
    axes.barh(table["model"], ratios, color="tab:blue")
    axes.set_xlim(0, 1)
    for index, value in enumerate(ratios):
        axes.annotate(f"{value:.0%}", (value, index), va="center", xytext=(3, 0), textcoords="offset points")
    return figure


def png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
