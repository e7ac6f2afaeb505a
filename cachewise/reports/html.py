"""The report as one self-contained HTML page: the tables, and the charts as base64 PNG.

Without matplotlib (the ``charts`` extra) the page has the tables and a line saying how to get
the charts (:data:`CHARTS_HINT`)."""

from __future__ import annotations

import base64
import html

from .bundle import Report, headline, sections
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
        ("Hit ratio by model", hit_ratio_chart),
    )
    images = [(title, base64.b64encode(png(chart(report.frame))).decode("ascii")) for title, chart in charts]
    return [
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        for title, data in images
    ]


def to_html(report: Report) -> str:
    def table_html(head: list[str], body: list[list[str]]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in body
        )
        return f"<table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>"

    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>cachewise cost report</title>',
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}th{background:#f4f4f4}.warn{color:#b00;font-weight:bold}img{max-width:100%}</style>",
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
    for title, head, body, _ in sections(report):
        parts.append(f"<h2>{html.escape(title)}</h2>{table_html(head, body)}")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
