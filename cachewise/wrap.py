"""``cachewise.wrap(client)``: one line to plan and account every Claude call.

The wrapped client is the SDK's own client with one more middleware
(``client.with_middleware``): every method keeps its signature and return
type (``messages.create``/``stream``, ``count_tokens``, batches,
``with_raw_response``, ``beta.messages``). Only Messages calls are planned and
recorded; everything else passes through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anthropic

from .errors import CachewiseError, PriceTableError
from .failopen import record_failure
from .integrations.fanout import DEFAULT_HOLD_TIMEOUT, FanOut, FanoutMode, Leases
from .integrations.middleware import CachewiseMiddleware
from .integrations.tracker import BudgetLike, CallTracker, Clock, PlannerLike
from .pricing.platforms import Platform

if TYPE_CHECKING:
    from .fleet import ReuseStore
    from .ledger import Ledger
    from .pricing import PriceBook
    from .sinks import RecordSink

__all__ = ["UnsupportedClient", "wrap"]

log = logging.getLogger("cachewise")
_PLATFORM_CLIENTS: dict[str, Platform] = {
    "AnthropicBedrock": "bedrock",
    "AsyncAnthropicBedrock": "bedrock",
    "AnthropicVertex": "vertex",
    "AsyncAnthropicVertex": "vertex",
}
ClientT = TypeVar("ClientT")


class UnsupportedClient(CachewiseError, TypeError):
    def __init__(self, client: object, why: str) -> None:
        self.client_type = type(client).__name__
        super().__init__(f"cachewise.wrap cannot wrap {self.client_type}: {why}")


def _ledger(ledger: Ledger | str | Path | None) -> Ledger:
    from .ledger import Ledger  # SQLAlchemy: imported when a ledger is made, not by import cachewise

    if isinstance(ledger, Ledger):
        return ledger
    return Ledger(ledger)


def platform_of(client: Any) -> tuple[Platform, str | None]:
    """Where ``client`` sends its calls: ``("anthropic", None)``, ``("bedrock", region)`` or
    ``("vertex", location)``."""
    platform = _PLATFORM_CLIENTS.get(type(client).__name__, "anthropic")
    if platform == "anthropic":
        return platform, None
    location = getattr(client, "aws_region" if platform == "bedrock" else "region", None)
    return platform, location if isinstance(location, str) else None


def _default_planner(client: Any, clock: Clock | None, book: PriceBook | None) -> PlannerLike | None:
    from .planner import CachePlanner
    from .tokens import AsyncTokenCounter, TokenCounter

    # First-party, Bedrock and Vertex clients alike: counts go through the client's own count_tokens,
    # without retries or retry-after waits (docs/planner.md, "Counting has its own time budget").
    counter: Any
    first_party = isinstance(client, anthropic.Anthropic | anthropic.AsyncAnthropic)
    name = None if first_party else type(client).__name__
    if isinstance(client, anthropic.AsyncAnthropic) or _is_async(client):
        counter = AsyncTokenCounter(client, namespace=name)
    else:
        counter = TokenCounter(client, namespace=name)
    # The run rule (a run of tool_use / tool_result blocks is one lookback position) is documented
    # for the Claude API only (docs/api-notes.md §1.1, §7.1): on Bedrock and Vertex every block counts.
    return CachePlanner(counter=counter, clock=clock, book=book, collapse_runs=first_party)


def _share(
    planner: PlannerLike | None, ledger: Ledger, store: str | ReuseStore | None, warm_start: bool
) -> None:
    """Warm ``planner`` from the ledger or share it through ``store`` (a :class:`CachePlanner` only)."""
    from .fleet import attach
    from .planner import CachePlanner

    if isinstance(planner, CachePlanner):
        attach(planner, store=store, ledger=ledger if warm_start else None)


def _leases(store: str | ReuseStore) -> Leases | None:
    """Fan-out leases on the fleet's store (docs/planner.md, "Fan-out across processes"); fail open."""
    from .fleet import open_leases
    from .fleet.stores import check_url

    if isinstance(store, str):
        check_url(store)  # a misspelt URL is the caller's to fix: raised, not logged
    try:
        return open_leases(store)
    except ImportError:
        raise
    except Exception as exc:
        record_failure("fanout leases (fan-out is held within this process only)", exc)
        return None


def _is_async(client: Any) -> bool:
    return type(client).__name__.startswith("Async")


def wrap(
    client: ClientT,
    *,
    ledger: Ledger | str | Path | None = None,
    planner: PlannerLike | bool | None = True,
    tags: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    book: PriceBook | None = None,
    budget: BudgetLike | None = None,
    sinks: Sequence[RecordSink] = (),
    diagnostics: bool = True,
    fanout: FanoutMode = "hold",
    fanout_timeout: float = DEFAULT_HOLD_TIMEOUT,
    warm_start: bool = True,
    reuse_store: str | ReuseStore | None = None,
) -> ClientT:
    """Return ``client`` with planning and recording; the original client is not changed.

    ``ledger``: a :class:`Ledger`, or a path / SQLAlchemy URL (default: ``CACHEWISE_DB`` or the
    user's data directory). ``planner``: ``True`` for the default :class:`CachePlanner` counting
    tokens through this client, ``False``/``None`` to record only, or your own planner.
    ``tags``: tags on every call of this client (``cachewise.tags()`` blocks add more).
    ``clock``: what "now" is for the planner and the ledger (an aware UTC datetime).
    ``budget``: a runtime budget checked before each request (raises ``BudgetExceeded``).
    ``sinks``: more places each call's record goes (anything with ``add(record)``), besides the
    ledger, the budget and the sinks registered with :func:`cachewise.sinks.register`.
    ``diagnostics``: ask the API why a call missed the cache (``diagnostics.previous_message_id``,
    docs/why.md); the reason is kept on the call's row. Refused once, it is not sent again.
    ``fanout``: what concurrent calls on a prefix nobody has cached yet do (docs/planner.md,
    "Fan-out and batches"): ``"hold"`` waits, at most ``fanout_timeout`` seconds, until the
    first such call's response has begun, so the others read what it writes; ``"prewarm"``
    writes the prefix first with a ``max_tokens: 0`` call; ``"off"`` sends every call at once.
    With a planner, batch create requests are planned too: the prefixes shared across the
    batch get 1h breakpoints.
    ``warm_start``: seed the default planner's reuse window from the ledger's calls of the last two
    hours, so a restarted process plans as if it had not stopped (docs/planner.md, "Fleet").
    ``reuse_store``: share reuse observations, token counts and learned minimums with the other
    processes using the same store, a ``redis://`` or ``postgresql://`` URL or a
    :class:`cachewise.fleet.ReuseStore` (then the store, not the ledger, is the warm start). On a
    URL, ``fanout`` holds across those processes too: one leads a cold prefix, the others wait.
    """
    fanout_control = FanOut(fanout, timeout=fanout_timeout)  # a bad value is the caller's error
    if reuse_store is not None and fanout_control.active:
        fanout_control.leases = _leases(reuse_store)
    if not isinstance(client, anthropic.Anthropic | anthropic.AsyncAnthropic):
        known = type(client).__name__ in _PLATFORM_CLIENTS
        if not (known and hasattr(client, "with_middleware")):
            raise UnsupportedClient(
                client,
                "expected anthropic.Anthropic or anthropic.AsyncAnthropic, or a Bedrock/Vertex client "
                "(AnthropicBedrock, AnthropicVertex and their async twins); for other HTTP clients use "
                "cachewise.integrations.transport or `cachewise proxy`",
            )
        # Same middleware hook, and a plain Messages body in the chain; see docs/wrapper.md.
    chosen: PlannerLike | None
    if planner is True:
        try:
            chosen = _default_planner(client, clock, book)
        except PriceTableError as exc:  # the user's overlay is broken: record unplanned, priced as errors
            record_failure("planner", exc)
            chosen = None
    elif planner is False or planner is None:
        chosen = None
    else:
        chosen = planner
    platform, location = platform_of(client)
    the_ledger = _ledger(ledger)
    if reuse_store is not None or (warm_start and planner is True):
        _share(chosen, the_ledger, reuse_store, warm_start)
    tracker = CallTracker(
        ledger=the_ledger,
        planner=chosen,
        clock=clock,
        tags=tags,
        book=book,
        budget=budget,
        sinks=sinks,
        platform=platform,
        location=location,
        diagnostics=diagnostics,
    )
    batches = None
    if chosen is not None:
        from .integrations.batch_planner import BatchPlanner  # loads the planner's modules

        batches = BatchPlanner(book=book, clock=clock, collapse_runs=platform == "anthropic")
    middleware = CachewiseMiddleware(tracker, fanout=fanout_control, batches=batches)
    wrapped: ClientT = cast(Any, client).with_middleware(middleware)
    setattr(wrapped, "_cachewise_tracker", tracker)  # noqa: B010 - the SDK client has no slot for it
    return wrapped


def tracker_of(client: Any) -> CallTracker:
    """The :class:`CallTracker` behind a wrapped client (its ledger, planner and clock)."""
    tracker = getattr(client, "_cachewise_tracker", None)
    if not isinstance(tracker, CallTracker):
        raise TypeError("not a client returned by cachewise.wrap()")
    return tracker
