"""The local, append-only spool that keeps rows while the database is unavailable.

Layout: one directory per database; in it, one file per writing ledger instance,
``spool-<pid>-<random>.jsonl``. The first line is a header naming the database (a hash
of its URL without password), every further line is one record as JSON
(:meth:`CallRecord.to_json`, ASCII JSON, so any text the record holds can be written), or
``{"quarantine": ...}`` for a record that cannot be serialised at all (its reason and its
raw fields, :class:`~.quarantine.QuarantinedRecord`). :meth:`Spool.append` writes whole lines, flushes and
``fsync``\\ s before it returns, so an appended row survives a crash of the process.

Replay claims a file with an exclusive ``flock``: the writing process holds that lock
while the file is open, so a live writer's file is never replayed under it, and a file
left by a crashed process is picked up by the next ledger that opens the same database.
Replayed rows are inserted idempotently (keyed on ``request_id``), so a replay that is
interrupted and repeated never duplicates a row. A line that cannot be decoded is
skipped with a warning naming the file and line, copied to ``<file>.corrupt`` for
inspection, and the other lines replay. That file is opened with ``O_NOFOLLOW``: a
symlink planted in its place is refused with an error naming it, and the spool file is
left in place for a later replay (nothing is written through the link).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..errors import SpoolError
from .quarantine import QuarantinedRecord
from .record import CallRecord

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process claim (see docs/ledger.md)
    fcntl = None  # type: ignore[assignment]

__all__ = ["ReplayResult", "Spool", "replay_progress", "spooled_bytes"]

log = logging.getLogger("cachewise.ledger")

SPOOL_FORMAT = 1
REPLAY_CHUNK = 1000
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


_progress_lock = threading.Lock()
_progress: list[Callable[[int], None]] = []


@contextmanager
def replay_progress(advance: Callable[[int], None]) -> Iterator[None]:
    """Call ``advance(bytes)`` as spooled lines are written back, while the block runs.

    Process-wide, not per context: replay runs on the ledger's writer thread. Used by
    ``cachewise ledger replay`` for its progress bar (:func:`spooled_bytes` is the total).
    """
    with _progress_lock:
        _progress.append(advance)
    try:
        yield
    finally:
        with _progress_lock:
            _progress.remove(advance)


def _report(count: int) -> None:
    with _progress_lock:
        callbacks = list(_progress)
    for advance in callbacks:
        advance(count)


def spooled_bytes(directory: Path) -> int:
    """The size of the spool files in ``directory``: what a full replay reads."""
    total = 0
    for path in directory.glob("spool-*.jsonl") if directory.is_dir() else ():
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total


@dataclass(slots=True)
class ReplayResult:
    files: int = 0
    rows: int = 0
    skipped_lines: int = 0
    left: list[str] = field(default_factory=list)
    quarantined: int = 0

    def add(self, other: ReplayResult) -> None:
        self.files += other.files
        self.rows += other.rows
        self.skipped_lines += other.skipped_lines
        self.left.extend(p for p in other.left if p not in self.left)
        self.quarantined += other.quarantined


#: Inserts replayed records, returns how many of them the database refused (quarantined).
InsertRecords = Callable[[list[CallRecord]], int]
InsertQuarantined = Callable[[list[QuarantinedRecord]], object]


def _line(record: CallRecord) -> bytes:
    try:
        payload: dict[str, Any] = record.to_json()
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        entry = QuarantinedRecord.of(record, f"cannot be written to the spool: {exc}")
        text = json.dumps({"quarantine": entry.to_json()}, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii") + b"\n"


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
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | _NOFOLLOW
            handle = os.fdopen(os.open(path, flags, 0o600), "ab")
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
        payload = b"".join(_line(r) for r in records)
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

    def replay(self, insert: InsertRecords, insert_quarantined: InsertQuarantined) -> ReplayResult:
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
                done = self._replay_file(path, handle, insert, insert_quarantined)
                if done is None:
                    result.left.append(str(path))
                    continue
                result.add(done)
        return result

    def _replay_file(
        self, path: Path, handle: IO[bytes], insert: InsertRecords, insert_quarantined: InsertQuarantined
    ) -> ReplayResult | None:
        """Replay one claimed file; ``None`` when it must stay in place (the reason is logged)."""
        corrupt: list[bytes] = []
        batch: list[CallRecord] = []
        held: list[QuarantinedRecord] = []
        done = ReplayResult(files=1)

        reported = 0

        def write_batch() -> None:
            nonlocal reported
            done.quarantined += insert(batch)
            done.rows += len(batch)
            batch.clear()
            if _progress:
                position = handle.tell()
                _report(position - reported)
                reported = position

        for number, raw in enumerate(handle, start=1):
            if number == 1:
                if self._header(path, raw) is None:
                    return None
                continue
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                if isinstance(data, dict) and "quarantine" in data:
                    held.append(QuarantinedRecord.from_json(data["quarantine"]))
                else:
                    batch.append(CallRecord.from_json(data))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("spool %s line %d: skipped, cannot decode it (%s)", path, number, exc)
                corrupt.append(raw if raw.endswith(b"\n") else raw + b"\n")
                continue
            if len(batch) >= REPLAY_CHUNK:
                write_batch()
        if batch:
            write_batch()
        if held:
            insert_quarantined(held)
            done.quarantined += len(held)
        if corrupt and not self._keep_corrupt(path, corrupt):
            return None
        done.skipped_lines = len(corrupt)
        path.unlink(missing_ok=True)
        _fsync_dir(self.directory)
        log.info("spool %s: replayed %d rows, skipped %d lines", path, done.rows, len(corrupt))
        return done

    def _keep_corrupt(self, path: Path, lines: list[bytes]) -> bool:
        """Append undecodable lines to ``<file>.corrupt``, never through a symlink planted there."""
        keep = path.with_suffix(".jsonl.corrupt")
        try:
            fd = os.open(keep, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o600)
        except OSError as exc:
            why = "it is a symlink, refusing to follow it" if keep.is_symlink() else str(exc)
            log.error(
                "spool %s: cannot keep %d undecodable lines in %s (%s); the spool file stays in place",
                path,
                len(lines),
                keep,
                why,
            )
            return False
        with os.fdopen(fd, "ab") as out:
            out.writelines(lines)
        return True

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
