"""The local, append-only spool that keeps rows while the database is unavailable.

Layout: one directory per database; in it, one file per writing ledger instance,
``spool-<pid>-<random>.jsonl``. The first line is a header naming the database (a hash
of its URL without password), every further line is one record as JSON
(:meth:`CallRecord.to_json`). :meth:`Spool.append` writes whole lines, flushes and
``fsync``\\ s before it returns, so an appended row survives a crash of the process.

Replay claims a file with an exclusive ``flock``: the writing process holds that lock
while the file is open, so a live writer's file is never replayed under it, and a file
left by a crashed process is picked up by the next ledger that opens the same database.
Replayed rows are inserted idempotently (keyed on ``request_id``), so a replay that is
interrupted and repeated never duplicates a row. A line that cannot be decoded is
skipped with a warning naming the file and line, copied to ``<file>.corrupt`` for
inspection, and the other lines replay.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..errors import SpoolError
from .record import CallRecord

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process claim (see docs/ledger.md)
    fcntl = None  # type: ignore[assignment]

__all__ = ["ReplayResult", "Spool"]

log = logging.getLogger("cachewise.ledger")

SPOOL_FORMAT = 1
REPLAY_CHUNK = 1000


@dataclass(slots=True)
class ReplayResult:
    files: int = 0
    rows: int = 0
    skipped_lines: int = 0
    left: list[str] = field(default_factory=list)


def _lock(handle: IO[Any], *, block: bool) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only JSON-lines files for one database, written by one ledger instance."""

    def __init__(self, directory: str | Path, db_key: str, db_label: str) -> None:
        self.directory = Path(directory)
        self.db_key = db_key
        self.db_label = db_label
        self._handle: IO[bytes] | None = None
        self._path: Path | None = None

    # -- writing -----------------------------------------------------------------------------

    def _open(self) -> IO[bytes]:
        if self._handle is not None:
            return self._handle
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"spool-{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
            handle = path.open("ab")
            _lock(handle, block=True)
            header = {
                "cachewise_spool": SPOOL_FORMAT,
                "db": self.db_key,
                "db_label": self.db_label,
                "created_at": datetime.now(UTC).isoformat(),
            }
            handle.write(json.dumps(header).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
            _fsync_dir(self.directory)
        except OSError as exc:
            raise SpoolError(self.directory, f"cannot create a spool file: {exc}") from exc
        self._handle, self._path = handle, path
        return handle

    def append(self, records: Sequence[CallRecord]) -> None:
        """Write ``records`` durably (flush + fsync); raises :class:`SpoolError` when it cannot."""
        if not records:
            return
        handle = self._open()
        payload = b"".join(
            json.dumps(r.to_json(), separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
            for r in records
        )
        try:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            raise SpoolError(self._path or self.directory, f"cannot append: {exc}") from exc

    def close(self) -> None:
        """Release this instance's file (it stays on disk until replayed)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._path = None

    # -- replay ------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("spool-*.jsonl"))

    def pending(self) -> bool:
        return self._handle is not None or bool(self.files())

    def replay(self, insert: Callable[[list[CallRecord]], object]) -> ReplayResult:
        """Insert every claimable spooled row with ``insert`` (idempotent), then delete the files.

        A file whose insert fails stays in place for the next replay; the error propagates
        after the lock is released.
        """
        self.close()  # our own file becomes claimable like any other
        result = ReplayResult()
        for path in self.files():
            try:
                handle = path.open("rb")
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise SpoolError(path, f"cannot open for replay: {exc}") from exc
            with handle:
                if not _lock(handle, block=False):
                    result.left.append(str(path))
                    continue
                try:
                    if os.fstat(handle.fileno()).st_ino != path.stat().st_ino:
                        continue
                except FileNotFoundError:
                    continue  # replayed and removed by another process meanwhile
                rows, skipped = self._replay_file(path, handle, insert)
                if rows < 0:
                    result.left.append(str(path))
                    continue
                result.files += 1
                result.rows += rows
                result.skipped_lines += skipped
        return result

    def _replay_file(
        self, path: Path, handle: IO[bytes], insert: Callable[[list[CallRecord]], object]
    ) -> tuple[int, int]:
        corrupt: list[bytes] = []
        batch: list[CallRecord] = []
        rows = 0
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                header = self._header(path, raw)
                if header is None:
                    return -1, 0
                continue
            if not raw.strip():
                continue
            try:
                batch.append(CallRecord.from_json(json.loads(raw)))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("spool %s line %d: skipped, cannot decode it (%s)", path, number, exc)
                corrupt.append(raw if raw.endswith(b"\n") else raw + b"\n")
                continue
            if len(batch) >= REPLAY_CHUNK:
                insert(batch)
                rows += len(batch)
                batch = []
        if batch:
            insert(batch)
            rows += len(batch)
        if corrupt:
            with path.with_suffix(".jsonl.corrupt").open("ab") as keep:
                keep.writelines(corrupt)
        path.unlink(missing_ok=True)
        _fsync_dir(self.directory)
        log.info("spool %s: replayed %d rows, skipped %d lines", path, rows, len(corrupt))
        return rows, len(corrupt)

    def _header(self, path: Path, raw: bytes) -> dict[str, Any] | None:
        try:
            header = json.loads(raw)
            if not isinstance(header, dict) or header.get("cachewise_spool") != SPOOL_FORMAT:
                raise ValueError("not a cachewise spool header")
        except ValueError as exc:
            log.warning("spool %s line 1: not a spool header (%s); file left in place", path, exc)
            return None
        if header.get("db") != self.db_key:
            log.warning(
                "spool %s belongs to ledger %s, not %s; file left in place",
                path,
                header.get("db_label"),
                self.db_label,
            )
            return None
        return header
