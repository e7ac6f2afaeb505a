"""One process's link to the fleet: events out in batches, others' events in, never on the request path.

The planner's hot path only appends to an in-memory queue (:meth:`Fleet.publish`) and, before it
reads its statistics, applies what the reader has already fetched (:meth:`Fleet.pending`). Two
background threads do the network:

* the **publisher** appends what is queued as one batch every ``flush_interval`` (20 ms), so the
  hot path does not even signal a thread;
* the **reader** follows the store's log (blocking reads: Redis ``XREAD BLOCK``, PostgreSQL
  ``LISTEN``), applies token counts and minimums to the memo at once (it is thread-safe) and
  queues reuse observations for the planner's thread (the reuse window is not).

Staleness is bounded by the flush interval plus the store's round trip (a few milliseconds,
``benchmarks/shared_reuse_bench.py``), applied at the reader's next planning step. :meth:`Fleet.sync`
waits until everything published so far, by anyone, has been read (a start-up warm start, and
tests). When the store is unreachable, each failure is logged (:func:`cachewise.failopen.record_failure`,
once with a traceback, then at debug level), queued events beyond ``max_queue`` are dropped and
counted, and planning goes on with what this process knows.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..failopen import record_failure
from .events import Batch, Event
from .stores import ReuseStore

__all__ = ["Fleet", "FleetCounters"]

RETRY_SECONDS = 1.0
FLUSH_SECONDS = 0.02  # the publisher sends what is queued this often (and at once on sync())
MAX_BATCH = 1000


@dataclass(slots=True)
class FleetCounters:
    """What a :class:`Fleet` did: events published, received from others, dropped; store failures."""

    published: int = 0
    received: int = 0
    dropped: int = 0
    failures: int = 0


class Fleet:
    """Publishes this process's events to ``store`` and receives everyone else's."""

    def __init__(
        self,
        store: ReuseStore,
        *,
        max_queue: int = 100_000,
        read_wait: float = 0.5,
        flush_interval: float = FLUSH_SECONDS,
    ) -> None:
        self.store = store
        self.origin = uuid.uuid4().hex
        self.counters = FleetCounters()
        #: reuse observations from other processes, applied by the planner's thread
        self.pending: deque[Event] = deque()
        #: applies a token-count or minimum event to the memo (set by :func:`cachewise.fleet.attach`)
        self.apply_memo: Callable[[Event], None] | None = None
        self._outbox: deque[Event] = deque()
        self._max_queue = max_queue
        self._read_wait = read_wait
        self._flush_interval = flush_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._inflight = 0
        self._cursor: str | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    # -- the hot path --------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Queue ``event`` for the next batch (no I/O, no signalling: the publisher flushes on its own)."""
        if len(self._outbox) >= self._max_queue:
            self.counters.dropped += 1
            return
        self._outbox.append(event)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Fleet:
        if not self._threads:
            for target, name in ((self._publish_loop, "publisher"), (self._read_loop, "reader")):
                thread = threading.Thread(target=target, name=f"cachewise-fleet-{name}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def load_memo(self) -> int:
        """Apply the store's durable token counts and minimums to the memo; how many rows."""
        apply = self.apply_memo
        if apply is None:
            return 0
        rows = 0
        try:
            for namespace, model, prefix_hash, tokens in self.store.counts():
                apply(["c", namespace, model, prefix_hash, tokens])
                rows += 1
            for namespace, model, above, at_most in self.store.minimums():
                apply(["m", namespace, model, above, at_most])
                rows += 1
        except Exception as exc:
            self._failed(exc)
        return rows

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until this process's queued events are stored and every stored batch is read.

        Returns ``False`` if that took longer than ``timeout`` seconds or the store failed.
        """
        deadline = time.monotonic() + timeout
        self._wake.set()
        while self._busy():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)
        try:
            target = self.store.latest()
        except Exception as exc:
            self._failed(exc)
            return False
        while not self.store.passed(self._cursor, target):
            if time.monotonic() > deadline or self._stop.is_set():
                return False
            time.sleep(0.0005)
        return True

    def _busy(self) -> bool:
        with self._lock:
            return bool(self._outbox) or self._inflight > 0

    def close(self, timeout: float = 2.0) -> None:
        """Publish what is queued (up to ``timeout``), stop the threads, close the store (once)."""
        if self._closed:
            return
        self._closed = True
        if self._threads:
            self.sync(timeout)
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self.store.close()

    # -- the threads ---------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        self.counters.failures += 1
        record_failure("reuse store (planning goes on locally)", exc)

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            while self._outbox:
                batch: Batch = []
                with self._lock:
                    while self._outbox and len(batch) < MAX_BATCH:
                        batch.append(self._outbox.popleft())
                    self._inflight = len(batch)
                try:
                    self.store.append(self.origin, batch)
                    self.counters.published += len(batch)
                except Exception as exc:
                    self.counters.dropped += len(batch)
                    self._failed(exc)
                    self._stop.wait(RETRY_SECONDS)
                finally:
                    self._inflight = 0

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            try:
                cursor, batches = self.store.read(self._cursor, self._read_wait)
            except Exception as exc:
                if self._stop.is_set():
                    return  # closed under a blocking read (at exit): not a store failure
                self._failed(exc)
                self._stop.wait(RETRY_SECONDS)
                continue
            for origin, batch in batches:
                if origin == self.origin:
                    continue
                for event in batch:
                    self._receive(event)
            self._cursor = cursor

    def _receive(self, event: Event) -> None:
        self.counters.received += 1
        if event[0] in ("c", "m"):
            if self.apply_memo is not None:
                try:
                    self.apply_memo(event)
                except Exception as exc:
                    self._failed(exc)
        else:
            self.pending.append(event)
