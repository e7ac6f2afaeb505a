"""The report as one self-contained HTML page: the tables, and the charts as base64 PNG.

Without matplotlib (the ``charts`` extra) the page has the tables and a line saying how to get
the charts (:data:`CHARTS_HINT`)."""

from __future__ import annotations

import base64
import html

from .bundle import Report, Section, headline, sections
from .charts import charts_available, daily_spend_chart, hit_ratio_chart, png, savings_chart

__all__ = ["CHARTS_HINT", "to_html"]

CHARTS_HINT = "Charts need matplotlib: pip install 'cachewise[charts]'"


def _charts(report: Report) -> list[str]:
    """The three charts as HTML, or the hint when matplotlib is not installed."""
    if not charts_available():
        return [f'<p class="warn">{html.escape(CHARTS_HINT)}</p>']
    charts = (
        ("Daily spend by component", daily_spend_chart),
        ("Savings over time", savings_chart),
    )
    by = report.by or []
    images = [(title, base64.b64encode(png(chart(report.source))).decode("ascii")) for title, chart in charts]
    title = f"Hit ratio by {', '.join(by) or 'all'}"
    images.append((title, base64.b64encode(png(hit_ratio_chart(report.source, by))).decode("ascii")))
    figures = "".join(
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}"></figure>'
        for title, data in images
    )
    return [f'<div class="charts">{figures}</div>']


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1180px;padding:0 1em;"
    "box-sizing:border-box}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px;max-width:100%}"
    "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}"
    "th{background:#f4f4f4;font-weight:600}"
    ".text{text-align:left;overflow-wrap:anywhere}.num{text-align:right;white-space:nowrap}"
    ".key{white-space:nowrap}"
    ".warn{color:#b00;font-weight:bold}"
    ".charts{display:flex;flex-wrap:wrap;gap:1em}"
    ".charts figure{margin:0;flex:0 1 calc(50% - .5em);min-width:min(480px,100%)}"
    "img{max-width:100%;height:auto}figcaption{font-weight:600;margin:.3em 0}"
)


_KEY_NOWRAP = 36  # characters: a longer key may wrap, so the page never scrolls sideways


def _table(section: Section) -> str:
    def kind(index: int, text: str = "") -> str:
        if index >= section.text:
            return "num"
        return "text key" if index < section.keys and len(text) <= _KEY_NOWRAP else "text"

    def row(cells: list[str]) -> str:
        return "".join(f'<td class="{kind(i, c)}">{html.escape(c)}</td>' for i, c in enumerate(cells))

    th = "".join(f'<th class="{kind(i)}">{html.escape(h)}</th>' for i, h in enumerate(section.head))
    rows = "".join(f"<tr>{row(cells)}</tr>" for cells in section.body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>"


def to_html(report: Report) -> str:
    """The page: headline, charts side by side, then every table (text left, numbers right)."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>cachewise cost report</title>',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_STYLE}</style>",
        "</head><body>",
        "<h1>cachewise cost report</h1>",
        "<ul>"
        + "".join(
            f"<li{' class=warn' if line.startswith(('UNPRICED', 'spend')) and not report.complete else ''}>"
            f"{html.escape(line)}</li>"
            for line in headline(report)
        )
        + "</ul>",
    ]
    parts.extend(_charts(report))
    for section in sections(report):
        parts.append(f"<h2>{html.escape(section.title)}</h2>{_table(section)}")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
