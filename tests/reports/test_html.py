"""The HTML report in a real browser (Debian's chromium, headless): no horizontal scrolling at
1280 px, every chart image loaded, text left and numbers right, short prefix hashes; and the
charts of one day and the hit-ratio chart's grouping.

The page is written by ``cachewise report --format html``; a copy with a small script that
writes the layout's measurements into the DOM is loaded with ``--dump-dom``. A screenshot is
kept under ``$CACHEWISE_ARTIFACTS`` (default: the test's tmp folder), and its path printed.
``.ci/run`` installs chromium when it is missing, so this test never skips there.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.reports import build_report, render
from tests.fixtures.frames import HAIKU, SONNET, frame, hand_rows, row

WINDOW = ["--since", "2026-10-01", "--until", "2026-12-01"]
PROBE = """<script>
window.addEventListener("load", () => {
  const d = document.documentElement;
  const images = [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth}));
  const cells = [...document.querySelectorAll("td")].map(
    c => [c.textContent, getComputedStyle(c).textAlign]);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
                                    images, cells});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run does it)")
    return found


def _browse(page: Path, *args: str) -> str:
    result = subprocess.run(
        [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         "--window-size=1280,900", "--virtual-time-budget=5000", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


def _artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CACHEWISE_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_html_report_in_a_browser(tmp_path: Path) -> None:
    from tests.fixtures.frames import write_ledger

    long_key = row("2026-11-02T10:00:00", SONNET, prefix="f" * 64,
                   tags={"feature": "a-rather-long-feature-name-for-the-layout"},
                   input_tokens=1200, ephemeral_5m_input_tokens=2048, output_tokens=300)  # fmt: skip
    db = write_ledger(tmp_path / "ledger.db", [*hand_rows(), long_key])
    page = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["report", "--db", db, *WINDOW, "--by", "model,tag:feature", "--calls", "8",
              "--format", "html", "--output", str(page)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "f" * 64 not in text and "f" * 12 in text  # a short hash, not 64 hex digits
    assert f"{SONNET} · feature=a-rather-long-feature-name-for-the-layout" in html.unescape(text)

    shot = _artifacts(tmp_path) / "report.png"
    _browse(page, f"--screenshot={shot}")
    assert shot.read_bytes().startswith(b"\x89PNG")
    print(f"screenshot of the HTML report: {shot}")

    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", PROBE + "</body>"))
    dom = _browse(probed, "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    m = json.loads(html.unescape(found.group(1)))
    assert m["scrollWidth"] <= m["clientWidth"] <= 1280, m  # no horizontal scrolling
    assert len(m["images"]) == 3
    assert all(i["complete"] and i["width"] > 0 for i in m["images"]), m["images"]
    align = dict(m["cells"])
    assert (
        align["claude-sonnet-4-5"] == "left" and align["a-rather-long-feature-name-for-the-layout"] == "left"
    )
    assert align["$0.0744"] == "right" and align["40.0%"] == "right"


def _points(figure: object) -> list[int]:
    axes = figure.axes[0]  # type: ignore[attr-defined]
    return [len(line.get_xdata()) for line in axes.get_lines()]


def test_one_day_of_data_is_points_not_a_fat_bar() -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.patches import Rectangle

    from cachewise.reports import daily_spend_chart, savings_chart

    one_day = frame([r for r in hand_rows() if r["started_at"].day == 1])
    for chart in (daily_spend_chart, savings_chart):
        figure = chart(one_day)
        axes = figure.axes[0]
        bars = [p for p in axes.patches if isinstance(p, Rectangle)]
        assert not bars, f"{chart.__name__} draws bars"
        assert any(n == 1 for n in _points(figure)) or axes.collections, chart.__name__
        low, high = axes.get_xlim()
        assert (low, high) == (-0.5, 0.5)  # the one day sits in the middle


def test_hit_ratio_chart_follows_by() -> None:
    pytest.importorskip("matplotlib")
    from cachewise.reports import hit_ratio_chart

    rows = frame(hand_rows())
    figure = hit_ratio_chart(rows, ["tag:feature"])
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["chat", "search"]
    figure = hit_ratio_chart(rows, "model,tag:feature")
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert f"{HAIKU} · search" in labels and f"{SONNET} · chat" in labels
    page = render(build_report(rows, by="tag:feature"), "html")
    assert "Hit ratio by tag:feature" in page
