"""Message Batches: a store of batches processed on the virtual clock.

Choice (docs/emulator.md): a batch is processed in one go ``batch_delay`` seconds of
emulator time after it was created (default 0: at creation, so a batch is ``ended`` as
soon as it is created). Until then it is ``in_progress``; processing happens lazily the
first time anyone looks (retrieve, list, results, the control API) at or after that
time, with the requests run in order through the same cache engine at the processing
time, billed with batch pricing (``service_tier`` ``"batch"``). A cancel before
processing marks the batch ``canceling``; it becomes ``ended`` with every request
``canceled`` at the next look. Batches expire 24 hours after creation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .errors import ApiError, error_body, invalid, new_id, not_found

__all__ = ["Batch", "BatchStore", "RunOne"]

# (params, workspace, at, custom_id, batch_id) -> the result object of one line.
RunOne = Callable[[Mapping[str, Any], str, datetime, str, str], dict[str, Any]]


def _stamp(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


@dataclass(slots=True)
class Batch:
    id: str
    workspace: str
    requests: list[dict[str, Any]]
    created_at: datetime
    process_at: datetime
    results_base: str
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(hours=24)

    def as_dict(self) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.ended_at is None:
            counts["processing"] = len(self.requests)
        for line in self.results:
            counts[line["result"]["type"]] += 1
        if self.ended_at is not None:
            status = "ended"
        elif self.cancel_initiated_at is not None:
            status = "canceling"
        else:
            status = "in_progress"
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": _stamp(self.created_at),
            "ended_at": _stamp(self.ended_at),
            "expires_at": _stamp(self.expires_at),
            "cancel_initiated_at": _stamp(self.cancel_initiated_at),
            "archived_at": None,
            "results_url": f"{self.results_base}v1/messages/batches/{self.id}/results"
            if self.ended_at is not None
            else None,
        }

    def jsonl(self) -> bytes:
        return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in self.results)


class BatchStore:
    """Every batch of one emulator, by id (thread-safe)."""

    def __init__(self, run_one: RunOne) -> None:
        self._run_one = run_one
        self._batches: dict[str, Batch] = {}
        self._lock = threading.RLock()

    def reset(self) -> None:
        with self._lock:
            self._batches.clear()

    def create(self, body: Any, workspace: str, now: datetime, delay: float, results_base: str) -> Batch:
        if not isinstance(body, Mapping):
            raise invalid("Input should be a valid dictionary")
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise invalid("requests: Field required (a non-empty list)")
        seen: set[str] = set()
        for i, item in enumerate(requests):
            if not isinstance(item, Mapping) or not isinstance(item.get("custom_id"), str):
                raise invalid(f"requests.{i}.custom_id: Field required")
            if not isinstance(item.get("params"), Mapping):
                raise invalid(f"requests.{i}.params: Field required")
            if item["custom_id"] in seen:
                raise invalid(f"requests.{i}.custom_id: duplicate custom_id {item['custom_id']!r}")
            seen.add(item["custom_id"])
        batch = Batch(
            id=new_id("msgbatch_"),
            workspace=workspace,
            requests=[dict(r) for r in requests],
            created_at=now,
            process_at=now + timedelta(seconds=delay),
            results_base=results_base,
        )
        with self._lock:
            self._batches[batch.id] = batch
        self.tick(now)
        return batch

    def tick(self, now: datetime) -> None:
        """Process every batch whose time has come."""
        with self._lock:
            for batch in self._batches.values():
                if batch.ended_at is not None:
                    continue
                if batch.cancel_initiated_at is not None:
                    batch.results = [
                        {"custom_id": r["custom_id"], "result": {"type": "canceled"}} for r in batch.requests
                    ]
                    batch.ended_at = now
                elif now >= batch.process_at:
                    batch.results = [self._line(batch, r) for r in batch.requests]
                    batch.ended_at = batch.process_at

    def _line(self, batch: Batch, request: Mapping[str, Any]) -> dict[str, Any]:
        custom_id = str(request["custom_id"])
        try:
            message = self._run_one(request["params"], batch.workspace, batch.process_at, custom_id, batch.id)
        except ApiError as exc:
            return {
                "custom_id": custom_id,
                "result": {"type": "errored", "error": error_body(exc.type, exc.message, new_id("req_"))},
            }
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}

    def get(self, batch_id: str, workspace: str, now: datetime) -> Batch:
        self.tick(now)
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None or batch.workspace != workspace:
            raise not_found(f"message_batch_id: no batch {batch_id!r}")
        return batch

    def cancel(self, batch_id: str, workspace: str, now: datetime) -> Batch:
        batch = self.get(batch_id, workspace, now)
        with self._lock:
            if batch.ended_at is None and batch.cancel_initiated_at is None:
                batch.cancel_initiated_at = now
        return batch

    def delete(self, batch_id: str, workspace: str, now: datetime) -> dict[str, Any]:
        batch = self.get(batch_id, workspace, now)
        if batch.ended_at is None:
            raise invalid(f"message batch {batch_id} is still processing; cancel it before deleting")
        with self._lock:
            del self._batches[batch_id]
        return {"id": batch_id, "type": "message_batch_deleted"}

    def listing(self, workspace: str, now: datetime) -> list[Batch]:
        self.tick(now)
        with self._lock:
            mine = [b for b in self._batches.values() if b.workspace == workspace]
        return sorted(reversed(mine), key=lambda b: b.created_at, reverse=True)  # newest first
