"""Claude Code session logs (``~/.claude/projects/**/*.jsonl``) as ledger records.

The format (docs/why.md, "Claude Code logs", from the public descriptions of these files): one JSON
object per line; the lines of ``"type": "assistant"`` carry ``message`` (the API's message: ``id``,
``model``, ``usage``), ``requestId`` (the API's request id) and ``timestamp`` (ISO 8601, UTC). A
streamed response is written two or three times with the same ``message.id`` and ``requestId``, and a
subagent's file under ``<session>/subagents/`` repeats its parent's lines: each pair is one billed
request, counted once (the last line of a pair holds the final usage). ``<synthetic>`` messages
were never billed and are skipped. Prompt text in these files is never read into the ledger.

Each call becomes a :class:`~cachewise.ledger.CallRecord` priced at its own time, keyed on its
``requestId`` (``cc_<message id>`` without one), tagged ``source=claude-code`` and ``session``;
the ledger's idempotent insert makes a second import of the same files a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..ledger.record import CallRecord
from ..pricing import PriceBook
from ..usage import Usage

__all__ = ["ClaudeCodeImport", "default_root", "read_claude_code"]


def default_root() -> Path:
    """``~/.claude/projects``: where Claude Code keeps its session logs."""
    return Path.home() / ".claude" / "projects"


@dataclass
class ClaudeCodeImport:
    """What an import read: the records (one per billed request) and what it skipped, and why."""

    records: list[CallRecord] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    duplicates: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder of Claude Code logs")
    return sorted(path.rglob("*.jsonl"))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _entries(files: Iterable[Path], out: ClaudeCodeImport) -> Iterator[tuple[str, dict[str, Any], Path, int]]:
    for path in files:
        out.files += 1
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                out.lines += 1
                try:
                    entry = json.loads(line)
                except ValueError:
                    out.skip("not JSON")
                    out.problems.append(f"{path.name}:{number}: not JSON")
                    continue
                if not isinstance(entry, dict) or entry.get("type") != "assistant":
                    out.skip("not an assistant message")
                    continue
                message = entry.get("message")
                if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
                    out.skip("no usage")
                    continue
                if message.get("model") == "<synthetic>":
                    out.skip("synthetic")
                    continue
                key = f"{message.get('id')}|{entry.get('requestId')}"
                yield key, entry, path, number


def read_claude_code(path: Path | None = None, *, book: PriceBook | None = None) -> ClaudeCodeImport:
    """Read every ``*.jsonl`` under ``path`` (default :func:`default_root`): one record per request."""
    out = ClaudeCodeImport()
    latest: dict[str, tuple[dict[str, Any], Path, int]] = {}
    for key, entry, where, number in _entries(_files(path or default_root()), out):
        if key in latest:
            out.duplicates += 1
        latest[key] = (entry, where, number)
    used = book if book is not None else PriceBook.default()
    for entry, where, number in latest.values():
        message = entry["message"]
        at = _time(entry.get("timestamp"))
        model = message.get("model")
        if at is None or not isinstance(model, str) or not model:
            out.skip("no time or model")
            out.problems.append(f"{where.name}:{number}: no timestamp or model")
            continue
        request_id = entry.get("requestId") or f"cc_{message.get('id') or f'{where.stem}_{number}'}"
        session = entry.get("sessionId")
        tags = {"source": "claude-code", **({"session": str(session)[:64]} if session else {})}
        out.records.append(
            CallRecord.priced(
                usage=Usage.read(message["usage"]),
                model=model,
                started_at=at,
                request_id=str(request_id),
                message_id=message.get("id"),
                book=used,
                endpoint="stream",
                tags=tags,
            )
        )
    out.records.sort(key=lambda r: r.started_at)
    return out
