"""Cost reports from the ledger: spend and savings by model, day and tag; cache hit ratio;
write waste; effective input price; costliest prefix families; charts; and renderings for the
terminal, CSV, JSON, Markdown and a self-contained HTML page.

Money stays ``Decimal`` until display; unpriced calls are counted apart and flag every total
that leaves them out as incomplete (docs/reports.md).
"""

from __future__ import annotations

from .charts import daily_spend_chart, hit_ratio_chart, png, savings_chart
from .frames import annotate, call_detail, prefix_families, spend, totals, unpriced
from .records import frame_from_records
from .render import FORMATS, Report, build_report, render
from .sample import sample_ledger, sample_records
from .source import FrameSource, LedgerSource, load_frame
from .window import parse_when

__all__ = [
    "FORMATS",
    "FrameSource",
    "LedgerSource",
    "Report",
    "annotate",
    "build_report",
    "call_detail",
    "daily_spend_chart",
    "frame_from_records",
    "hit_ratio_chart",
    "load_frame",
    "parse_when",
    "png",
    "prefix_families",
    "render",
    "sample_ledger",
    "sample_records",
    "savings_chart",
    "spend",
    "totals",
    "unpriced",
]
