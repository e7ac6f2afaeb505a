"""Fan-out: concurrent requests on a prefix nobody has cached yet should pay one write, not N.

A cache entry is readable only once the response of the request that writes it has begun
(docs/api-notes.md §2.5), so N requests sent together on a new prefix all miss and all
write. :class:`FanOut` coordinates the requests of one wrapped client (or transport):

* ``"hold"`` (default): the first request on a cold breakpoint prefix goes at once and
  *leads* it; a concurrent request whose plan marks a prefix with a lead in flight waits
  until that lead's response begins (its headers arrive: for a stream that is when the
  server starts sending events) or ``timeout`` seconds pass (default
  :data:`DEFAULT_HOLD_TIMEOUT`), then goes as written.
* ``"prewarm"``: the leader first sends its planned body with ``max_tokens: 0`` (the API
  writes the markers and returns at once, docs/api-notes.md §2.5), which releases the
  others; then it sends its own request, which reads. A body the API would refuse to
  pre-warm (``thinking.type: "enabled"``, an output format, a forced tool) is led as in
  ``"hold"``.
* ``"off"``: every request goes at once.

Prefixes are the plan's breakpoints (``prefix_hash`` of each, per model), or, when nothing
was planned (``planner=False``), the caller's own markers; a prefix whose
lead has begun is *warm* until its TTL runs out on the tracker's clock, and a request on
warm prefixes never waits. Waiting is bounded and never raises: sync callers wait on a
:class:`threading.Event`, async callers on a future of their own event loop, so the loop
is never blocked.

Across processes (``leases``, a :class:`Leases` such as :func:`cachewise.fleet.open_leases` on
the fleet's Redis or PostgreSQL): a request that would lead a cold prefix first claims it in the
store (Redis ``SET NX PX``, PostgreSQL ``INSERT ... ON CONFLICT`` on a lease row) for at most
``timeout`` seconds. Claimed, it leads as above and, once its response begins, marks the prefix
warm in the store; claimed by another process, it (and every request of this process on that
prefix) waits for that lead as for a local one, polling the store, within the same bounded hold.
A store that fails is logged and the request leads as if alone (fail open).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from ..api_rules import TTL_SECONDS, Ttl
from ..failopen import fail_open, record_failure

if TYPE_CHECKING:
    from .tracker import Prepared

__all__ = [
    "DEFAULT_HOLD_TIMEOUT",
    "Admission",
    "FanOut",
    "FanoutMode",
    "Hold",
    "Leases",
    "prewarm_body",
    "scope_of",
]

FanoutMode = Literal["hold", "prewarm", "off"]
MODES: tuple[str, ...] = get_args(FanoutMode)

#: Seconds a request waits at most for another request's response to begin. Small: a first
#: response usually begins within a second or two; past that, sending is the better bet.
DEFAULT_HOLD_TIMEOUT = 2.0

_Key = tuple[str, str, str]  # (scope: whose cache, model, prefix hash)

LeaseState = Literal["lead", "held", "warm", "free"]

#: Seconds between two looks at the store while another process leads a prefix.
LEASE_POLL = 0.005


class Leases(Protocol):
    """Fan-out leases in a store several processes share (implemented in :mod:`cachewise.fleet.leases`).

    ``key`` names one prefix of one cache (a digest, no prompt text); ``holder`` is the claiming
    process; times are the caller's clock (aware UTC), so a replay in virtual time holds as live.
    Every method may raise the store's errors: :class:`FanOut` logs them and fails open.
    """

    def claim(self, key: str, holder: str, hold: float, now: datetime) -> LeaseState:
        """Lead ``key`` for at most ``hold`` seconds: ``"lead"`` if this claim won, ``"held"``
        if another holder leads it now, ``"warm"`` if its entry is known live at ``now``."""

    def state(self, key: str, now: datetime) -> LeaseState:
        """``"held"`` (a lead in flight), ``"warm"`` (live at ``now``) or ``"free"``."""

    def warm(self, key: str, holder: str, until: datetime, ttl: float) -> None:
        """The lead's response began: the entry is live until ``until`` (``ttl`` seconds from now)."""

    def drop(self, key: str, holder: str) -> None:
        """The lead failed: release ``key`` if ``holder`` still holds it."""


def lease_key(key: _Key) -> str:
    """The store's name for a prefix of a cache: a digest of (scope, model, prefix hash)."""
    return hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:32]


def scope_of(headers: Mapping[str, str]) -> str:
    """Whose cache a proxied request reads: a hash of its API key (entries are per workspace).

    Only the hash is kept, in memory; the key itself is never stored or logged.
    """
    key = headers.get("x-api-key") or headers.get("authorization") or ""
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else ""


class _Flight:
    """A lead in flight: set once its response has begun (or it failed)."""

    __slots__ = ("_lock", "_waiters", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def done(self) -> None:
        with self._lock:
            self.event.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    def future(self) -> asyncio.Future[None]:
        """A future of the running loop, resolved when this flight is done."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self.event.is_set():
                future.set_result(None)
            else:
                self._waiters.append((loop, future))
        return future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(slots=True)
class Admission:
    """What one request does about fan-out: which flights it waits for, which prefixes it leads."""

    waits: tuple[_Flight, ...] = ()
    leads: tuple[_Key, ...] = ()
    ttls: dict[_Key, float] = field(default_factory=dict)
    prewarm: bool = False
    wanted: tuple[_Key, ...] = ()  # prefixes another request leads: waited for
    at: datetime | None = None
    held: float = 0.0  # seconds spent waiting
    timed_out: bool = False
    released: bool = False
    claimed: tuple[_Key, ...] = ()  # leads also claimed in the fleet's store (released there too)


@dataclass(frozen=True, slots=True)
class Hold:
    """Ask (see :mod:`.steps`): wait for ``admission.waits`` (bounded); the answer is ignored."""

    admission: Admission


_WARM_LIMIT = 50_000  # warm prefixes remembered before expired ones are swept
_NO_PREWARM_CHOICES = frozenset({"any", "tool"})


def prewarm_body(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """``body`` as a ``max_tokens: 0`` pre-warm request, or ``None`` where the API refuses one.

    Refused (docs/api-notes.md §2.5): ``stream: true`` (dropped here: the pre-warm is
    never streamed), ``thinking.type: "enabled"``, an ``output_config.format``, a forced
    ``tool_choice`` (``any`` / ``tool``). Everything else is kept, so the prefix (thinking,
    effort and tools included) is the one the real request will read.
    """
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        return None
    output = body.get("output_config")
    if isinstance(output, Mapping) and output.get("format") is not None:
        return None
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") in _NO_PREWARM_CHOICES:
        return None
    warm = {k: v for k, v in body.items() if k not in ("stream", "diagnostics")}
    warm = copy.deepcopy(warm)
    warm["max_tokens"] = 0
    return warm


def _blocks(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _has_marker(body: Mapping[str, Any]) -> bool:
    """Whether the body carries a ``cache_control`` where the API reads one (a shallow look)."""
    if body.get("cache_control"):
        return True
    for block in (*_blocks(body.get("tools")), *_blocks(body.get("system"))):
        if isinstance(block, Mapping) and "cache_control" in block:
            return True
    for message in _blocks(body.get("messages")):
        content = message.get("content") if isinstance(message, Mapping) else None
        for block in _blocks(content):
            if isinstance(block, Mapping) and (
                "cache_control" in block
                or any(isinstance(b, Mapping) and "cache_control" in b for b in _blocks(block.get("content")))
            ):
                return True
    return False


def _marked(prepared: Prepared) -> list[tuple[str, str, Ttl]]:
    """(model, prefix hash, TTL) of each breakpoint: the plan's, or the markers the caller wrote."""
    plan = prepared.plan
    if plan is not None:
        return [(plan.model, b.prefix_hash, b.ttl) for b in plan.breakpoints if b.prefix_hash is not None]
    body = prepared.body or prepared.original
    if body is None or not _has_marker(body):
        return []  # no marker anywhere: nothing is written, nothing to wait for
    from ..prompt import Prompt  # only for unplanned calls with markers

    prompt = Prompt(body)
    out = [(prompt.model, prompt.positions[m.position].prefix_hash, m.ttl) for m in prompt.markers]
    if prompt.auto is not None and prompt.positions:
        out.append((prompt.model, prompt.positions[-1].prefix_hash, prompt.auto))
    return out


class FanOut:
    """Holds or pre-warms concurrent requests on a cold prefix (see the module docstring)."""

    def __init__(
        self,
        mode: FanoutMode | str = "hold",
        *,
        timeout: float = DEFAULT_HOLD_TIMEOUT,
        leases: Leases | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"fanout: expected one of {', '.join(map(repr, MODES))}, got {mode!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
            raise ValueError(f"fanout_timeout: expected a number of seconds >= 0, got {timeout!r}")
        self.mode: FanoutMode = mode  # type: ignore[assignment]
        self.timeout = float(timeout)
        self._flights: dict[_Key, _Flight] = {}
        self._warm: dict[_Key, datetime] = {}
        self._lock = threading.Lock()
        self.counts = {"led": 0, "held": 0, "timeouts": 0, "prewarms": 0, "fleet_held": 0}
        #: shared with other processes (see the module docstring); ``None``: this process alone
        self.leases = leases
        self.holder = uuid.uuid4().hex

    @property
    def active(self) -> bool:
        return self.mode != "off"

    # -- before sending ---------------------------------------------------------------------------

    def admit(self, prepared: Prepared, now: datetime, *, scope: str = "") -> Admission:
        """Decide, without waiting, what ``prepared`` waits for and which prefixes it leads (with
        ``leases``: one store round trip per prefix it would lead, see the module docstring).

        ``scope``: whose cache (see :func:`scope_of`); requests of different scopes never wait
        for each other. A wrapped client or transport has one scope.
        """
        if self.mode == "off":
            return Admission()
        ttls = {(scope, model, digest): float(TTL_SECONDS[ttl]) for model, digest, ttl in _marked(prepared)}
        if not ttls:
            return Admission()
        with self._lock:
            waits: list[_Flight] = []
            cold: list[_Key] = []
            wanted: list[_Key] = []
            for key in ttls:
                flight = self._flights.get(key)
                if flight is not None:
                    wanted.append(key)
                    if flight not in waits:
                        waits.append(flight)
                    continue
                until = self._warm.get(key)
                if until is not None and until > now:
                    continue
                self._warm.pop(key, None)
                cold.append(key)
            for key in cold:
                self._flights[key] = _Flight()
        claimed: list[_Key] = []
        if cold and self.leases is not None:
            # Outside the lock: a store round trip. The local flights already make this process's
            # own requests wait; the store decides which process leads.
            for key in list(cold):
                state = self._claim(key, now)
                if state in ("lead", "free"):  # free: the lease ended as we looked; go as if alone
                    if state == "lead":
                        claimed.append(key)
                    continue
                cold.remove(key)
                flight = self._flights[key]
                if state == "held":
                    wanted.append(key)
                    waits.append(flight)
                    self._watch(key, flight, now, ttls[key])
                else:  # warm in the fleet: nobody waits
                    with self._lock:
                        self._flights.pop(key, None)
                        self._warm[key] = now + timedelta(seconds=ttls[key])
                    flight.done()
        with self._lock:
            if cold:
                self.counts["led"] += 1
            if waits:
                self.counts["held"] += 1
        # A leader with nobody ahead of it pre-warms; one that also waits lets that lead warm first.
        prewarm = self.mode == "prewarm" and bool(cold) and not waits
        return Admission(tuple(waits), tuple(cold), ttls, prewarm, tuple(wanted), now, claimed=tuple(claimed))

    # -- across processes ---------------------------------------------------------------------

    def _claim(self, key: _Key, now: datetime) -> LeaseState:
        """Claim ``key`` in the fleet's store; ``"free"`` (go as if alone, nothing claimed) when
        there is no hold to share or the store fails (fail open)."""
        leases = self.leases
        if leases is None or self.timeout <= 0:
            return "free"
        try:
            return leases.claim(lease_key(key), self.holder, self.timeout, now)
        except Exception as exc:
            record_failure("fanout lease (the request goes as if alone)", exc)
            return "free"

    def _watch(self, key: _Key, flight: _Flight, now: datetime, ttl: float) -> None:
        """Until another process's lead on ``key`` ends (or the hold runs out): then wake ``flight``."""
        leases = self.leases
        assert leases is not None
        with self._lock:
            self.counts["fleet_held"] += 1
        # Past the waiters' own deadlines (each bounded by ``timeout`` from when it began waiting),
        # so a waiter times out, and says so, before the watch gives up on a lead still held.
        name, deadline = lease_key(key), time.monotonic() + 2 * self.timeout + 0.05
        warm_until = now + timedelta(seconds=ttl)

        def poll() -> None:
            state: LeaseState = "free"
            try:
                while time.monotonic() < deadline:
                    state = leases.state(name, now)
                    if state != "held":
                        break
                    time.sleep(LEASE_POLL)
            except Exception as exc:
                record_failure("fanout lease (the request goes as if alone)", exc)
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
                if state == "warm":
                    self._warm[key] = warm_until
            flight.done()

        threading.Thread(target=poll, name="cachewise-fanout-lease", daemon=True).start()

    def _again(self, admission: Admission) -> bool:
        """After the awaited leads are done: lead what none of them warmed, wait for any new lead.

        So when a lead fails, one of its followers leads the prefix next instead of all writing it.
        Returns whether there is a new lead to wait for.
        """
        with self._lock:
            waits: list[_Flight] = []
            still: list[_Key] = []
            taken: list[_Key] = []
            for key in admission.wanted:
                flight = self._flights.get(key)
                if flight is not None:
                    still.append(key)
                    if flight not in waits:
                        waits.append(flight)
                    continue
                until = self._warm.get(key)
                if until is not None and admission.at is not None and until > admission.at:
                    continue
                self._flights[key] = _Flight()
                taken.append(key)
            admission.leads = (*admission.leads, *taken)
            admission.wanted = tuple(still)
            admission.waits = tuple(waits)
        if taken and self.leases is not None and admission.at is not None:
            # The lead we waited for failed or ran out: lead, and tell the fleet (no second wait).
            won = [key for key in taken if self._claim(key, admission.at) == "lead"]
            admission.claimed = (*admission.claimed, *won)
        return bool(waits)

    async def ahold(self, prepared: Prepared, now: datetime, *, scope: str = "") -> Admission:
        """:meth:`admit`, then :meth:`await_` what it waits for; never raises (fail open).

        For the proxy, which sends itself: it calls :meth:`release` once the response began.
        In ``"prewarm"`` mode the proxy sends no pre-warm; its first request leads, as in ``"hold"``.
        """
        admission = Admission()
        with fail_open("fanout"):
            admission = self.admit(prepared, now, scope=scope)
            if admission.waits:
                await self.await_(admission)
        return admission

    def wait(self, admission: Admission) -> None:
        """Block this thread until every flight ``admission`` waits for is done, or the timeout."""
        started = time.monotonic()
        deadline = started + self.timeout
        while admission.waits:
            for flight in admission.waits:
                if not flight.event.wait(max(0.0, deadline - time.monotonic())):
                    admission.timed_out = True
                    break
            if admission.timed_out or not self._again(admission):
                break
        self._waited(admission, time.monotonic() - started)

    async def await_(self, admission: Admission) -> None:
        """Like :meth:`wait`, awaiting futures of the running loop (the loop keeps running)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.timeout
        while admission.waits:
            for flight in admission.waits:
                if flight.event.is_set():
                    continue
                try:
                    await asyncio.wait_for(flight.future(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    admission.timed_out = True
                    break
            if admission.timed_out or not self._again(admission):
                break
        self._waited(admission, loop.time() - started)

    def _waited(self, admission: Admission, seconds: float) -> None:
        admission.held = seconds
        if admission.timed_out:
            with self._lock:
                self.counts["timeouts"] += 1

    # -- once a response began -------------------------------------------------------------------

    def release(self, admission: Admission, *, ok: bool, now: datetime) -> None:
        """The lead's response began (``ok``) or it failed: wake whoever waits for its prefixes.

        Idempotent. A lead that began marks its prefixes warm for their TTL (from ``now``).
        """
        if admission.released or not admission.leads:
            admission.released = True
            return
        admission.released = True
        with self._lock:
            flights = [self._flights.pop(key, None) for key in admission.leads]
            if ok:
                for key in admission.leads:
                    self._warm[key] = now + timedelta(seconds=admission.ttls[key])
                if len(self._warm) > _WARM_LIMIT:  # forget prefixes whose entries have expired
                    self._warm = {k: t for k, t in self._warm.items() if t > now}
        for flight in flights:
            if flight is not None:
                flight.done()
        if admission.claimed and self.leases is not None:
            self._release_claims(admission, ok=ok, now=now)

    def _release_claims(self, admission: Admission, *, ok: bool, now: datetime) -> None:
        """Tell the fleet the lead began (warm for its TTL) or failed (the lease dropped); fail open."""
        leases = self.leases
        assert leases is not None
        for key in admission.claimed:
            try:
                if ok:
                    ttl = admission.ttls[key]
                    leases.warm(lease_key(key), self.holder, now + timedelta(seconds=ttl), ttl)
                else:
                    leases.drop(lease_key(key), self.holder)
            except Exception as exc:
                record_failure("fanout lease (the request goes as if alone)", exc)
                return

    def settle(self, admission: Admission, *, ok: bool, clock: Callable[[], datetime]) -> None:
        """:meth:`release` at ``clock()``, failing open (a failure is logged, the call goes on);
        nothing to do, nothing is asked of ``clock``."""
        if admission.released or not admission.leads:
            return
        with fail_open("fanout"):
            self.release(admission, ok=ok, now=clock())

    def prewarm_call(self, prepared: Prepared, now: datetime) -> Prepared | None:
        """The pre-warm of ``prepared``: its body with ``max_tokens: 0``, a call of its own tagged
        ``cachewise_fanout=prewarm`` and counted; ``None`` where the body cannot be pre-warmed."""
        from .tracker import Prepared

        body: dict[str, Any] | None = None
        with fail_open("fanout prewarm"):
            source = prepared.body or prepared.original
            body = prewarm_body(source) if source is not None else None
        if body is None:
            return None
        with self._lock:
            self.counts["prewarms"] += 1
        return Prepared(
            original=body,
            body=body,
            started_at=now,
            started=time.perf_counter(),
            plan=prepared.plan,
            tags={**prepared.tags, "cachewise_fanout": "prewarm"},
        )

    def in_flight(self) -> int:
        """How many prefixes have a lead whose response has not begun (for tests and reports)."""
        with self._lock:
            return len(self._flights)
