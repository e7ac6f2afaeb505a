"""Every API fact cited by code, data and docs points into docs/api-notes.md, never outside the repo."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "docs" / "api-notes.md"
CITATION = re.compile(r"docs/api-notes\.md\s+(?:§(\d+(?:\.\d+)?)|Appendix A(?: #(\d+))?)")
# Spelled in pieces so this file does not match itself.
FORBIDDEN = ["api-" + "sheet", "S" + "§", "/" + "work/", "/" + "root/", "/" + "home/"]


def _tracked() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def _sections() -> tuple[set[str], set[int]]:
    text = NOTES.read_text(encoding="utf-8")
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.MULTILINE))
    rows = {
        int(n) for n in re.findall(r"^\| (\d+) \|", text.split("## Appendix A", 1)[1], flags=re.MULTILINE)
    }
    return sections, rows


def test_no_file_cites_a_document_outside_the_repository_or_a_machine_path() -> None:
    found = []
    for path in _tracked():
        text = _text(path)
        if text is None:
            continue
        for word in FORBIDDEN:
            if word in text:
                found.append(f"{path.relative_to(ROOT)}: {word!r}")
    assert not found, "\n".join(found)


def test_every_citation_of_the_api_notes_names_a_section_that_exists() -> None:
    sections, rows = _sections()
    assert {"1.1", "2.1", "3.1", "6", "6.1", "9"} <= sections
    assert rows == set(range(1, 26))
    cited = 0
    broken = []
    for path in _tracked():
        text = _text(path)
        if text is None:
            continue
        for match in CITATION.finditer(text):
            cited += 1
            section, row = match.groups()
            if section is not None and section not in sections:
                broken.append(f"{path.relative_to(ROOT)}: §{section}")
            if row is not None and int(row) not in rows:
                broken.append(f"{path.relative_to(ROOT)}: Appendix A #{row}")
    assert cited > 100
    assert not broken, "\n".join(broken)


def test_no_tracked_symlink_points_outside_the_repository() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    links = [line.split("\t", 1)[1] for line in listed if line.startswith("120000 ")]  # git's symlink mode
    outside = [
        name
        for name in links
        if os.path.isabs(os.readlink(ROOT / name))
        or not (ROOT / name).parent.joinpath(os.readlink(ROOT / name)).resolve().is_relative_to(ROOT)
    ]
    assert not outside, f"tracked symlinks that name a place outside the repository: {outside}"
