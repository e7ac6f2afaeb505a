"""Fault injection: each fault applies to the next ``count`` matching requests.

Kinds (``endpoint`` selects ``messages``, ``count_tokens``, ``batches``, ``models``, ``admin``
(the usage and cost reports) or ``*``; ``after`` lets that many matching requests through first):

* ``rate_limit`` → 429 ``rate_limit_error`` with ``retry-after`` (seconds);
* ``overloaded`` → 529 ``overloaded_error``; ``api_error`` → 500 ``api_error``;
* ``stream_cut`` → a streaming reply whose connection drops after ``after_events`` events;
* ``stream_error`` → an ``event: error`` (``error_type``, default ``overloaded_error``)
  after ``after_events`` events, on an HTTP 200 stream;
* ``delay`` → the response begins ``seconds`` (real time) after the request is read,
  which also delays when its cache writes become readable;
* ``hold`` (Python only, :meth:`Faults.hold`) → the response begins when a
  :class:`threading.Event` is set.

Over HTTP: ``POST /_emulator/faults`` with a JSON list of objects with these fields.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast, get_args

from ..errors import EmulatorError

__all__ = ["Fault", "FaultKind", "Faults"]

FaultKind = Literal["rate_limit", "overloaded", "api_error", "stream_cut", "stream_error", "delay", "hold"]
_KINDS: tuple[str, ...] = get_args(FaultKind)
_ENDPOINTS = ("messages", "count_tokens", "batches", "models", "admin", "*")
_STREAM_ONLY = ("stream_cut", "stream_error")


@dataclass(slots=True)
class Fault:
    """One injected fault and how many more requests it applies to."""

    kind: FaultKind
    count: int = 1
    endpoint: str = "messages"
    retry_after: float = 1.0
    after_events: int = 3
    seconds: float = 0.0
    error_type: str = "overloaded_error"
    message: str | None = None
    after: int = 0
    gate: threading.Event | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Every field but the Python-only ``gate``, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "gate"}

    @classmethod
    def from_json(cls, data: Any, where: str = "faults") -> Fault:
        if not isinstance(data, Mapping):
            raise EmulatorError(f"{where}: expected an object with a 'kind', got {data!r}")
        kind = data.get("kind")
        if kind not in _KINDS or kind == "hold":
            raise EmulatorError(f"{where}.kind: expected one of {', '.join(_KINDS[:-1])}, got {kind!r}")
        unknown = set(data) - set(cls.__dataclass_fields__) - {"gate"}
        if unknown or "gate" in data:
            raise EmulatorError(f"{where}: unknown fields {sorted(unknown | ({'gate'} & set(data)))}")
        endpoint = data.get("endpoint", "messages")
        if endpoint not in _ENDPOINTS:
            raise EmulatorError(
                f"{where}.endpoint: expected one of {', '.join(_ENDPOINTS)}, got {endpoint!r}"
            )
        try:
            fault = cls(
                kind=cast(FaultKind, kind),
                count=int(data.get("count", 1)),
                endpoint=str(endpoint),
                retry_after=float(data.get("retry_after", 1.0)),
                after_events=int(data.get("after_events", 3)),
                seconds=float(data.get("seconds", 0.0)),
                error_type=str(data.get("error_type", "overloaded_error")),
                message=data.get("message"),
                after=int(data.get("after", 0)),
            )
        except (TypeError, ValueError) as exc:
            raise EmulatorError(f"{where}: {exc}") from exc
        if fault.after < 0:
            raise EmulatorError(f"{where}.after: must be at least 0, got {fault.after}")
        if fault.count < 1:
            raise EmulatorError(f"{where}.count: must be at least 1, got {fault.count}")
        return fault


class Faults:
    """The queue of pending faults of one emulator (thread-safe)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, kind: FaultKind, count: int = 1, **options: Any) -> Fault:
        """Queue a fault, e.g. ``faults.add("rate_limit", retry_after=2)``."""
        fault = Fault.from_json({"kind": kind, "count": count, **options}) if kind != "hold" else None
        if fault is None:
            raise EmulatorError("use Faults.hold() for a hold fault")
        return self.push(fault)

    def push(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def hold(self, count: int = 1, endpoint: str = "messages") -> threading.Event:
        """Hold the next ``count`` matching responses until the returned event is set."""
        gate = threading.Event()
        self.push(Fault("hold", count=count, endpoint=endpoint, gate=gate))
        return gate

    def take(self, endpoint: str, *, streaming: bool) -> Fault | None:
        """The first pending fault matching this request, consumed once."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint not in (endpoint, "*"):
                    continue
                if fault.kind in _STREAM_ONLY and not streaming:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
