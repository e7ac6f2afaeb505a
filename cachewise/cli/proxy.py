"""``cachewise proxy``: plan and record Messages calls for any language over HTTP."""

from __future__ import annotations

import gc
import signal
import socket
import sys
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy.engine import URL

from .errors import CliError
from .options import PORT, HttpUrl, db_option, ledger_url
from .serve import bind, port_of, serve

if TYPE_CHECKING:
    from ..gateway.app import ASGIApp, Message, Receive, Scope, Send
    from ..ledger import Ledger

__all__ = ["proxy"]


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind. Loopback by default; binding elsewhere exposes the proxy to your network.",
)
@click.option(
    "--port", default=8787, show_default=True, type=PORT, help="Port to listen on (0: any free port)."
)
@click.option(
    "--upstream",
    default="https://api.anthropic.com",
    show_default=True,
    type=HttpUrl(),
    help="Where requests are forwarded (the API, a gateway, or `cachewise emulate`).",
)
@db_option()
@click.option(
    "--plan/--no-plan",
    default=True,
    show_default=True,
    help="Place cache breakpoints (counting through the upstream), or only record.",
)
@click.option(
    "--unwrap-envelopes/--keep-envelopes",
    default=True,
    show_default=True,
    help='Return {"code": 200, "data": {...}} replies from resellers unwrapped.',
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=None,
    help="Refuse request bodies larger than this with the API's 413 request_too_large "
    "(default: the API's own limits, 32 MB; 256 MB for batch creation).",
)
@click.option(
    "--budgets",
    "budgets_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Enforce the day/month budgets of this cachewise.toml or pyproject.toml before each "
    "Messages call (per key, tag and model; docs/budgets.md).",
)
@click.option(
    "--metrics/--no-metrics",
    default=None,
    help="Serve Prometheus metrics at /metrics (default: when prometheus-client is installed).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes serving the one socket, each with its own planner and ledger writer "
    "(share a PostgreSQL ledger with --db for one set of rows; docs/proxy.md).",
)
@click.option(
    "--reuse-store",
    default=None,
    metavar="URL",
    callback=lambda ctx, param, value: _store_url(value),
    help="Share the planner's reuse state (observations, token counts, learned minimums) with every "
    "process using this redis:// or postgresql:// URL (docs/planner.md, Fleet).",
)
@click.option(
    "--warm-start/--no-warm-start",
    default=True,
    show_default=True,
    help="Seed the planner from the ledger's calls of the last two hours (without --reuse-store).",
)
def proxy(
    host: str,
    port: int,
    upstream: str,
    db: str | None,
    plan: bool,
    unwrap_envelopes: bool,
    max_body_bytes: int | None,
    budgets_file: Path | None,
    metrics: bool | None,
    workers: int,
    reuse_store: str | None,
    warm_start: bool,
) -> None:
    """Serve a local Messages API proxy; set ANTHROPIC_BASE_URL=http://HOST:PORT in your client."""
    url = ledger_url(db, must_exist=False)
    sock = bind(host, port)
    label = str(url)
    try:
        from ..ledger import Ledger

        probe = Ledger(url)  # creates or migrates the ledger once, before any worker starts
        try:
            label = probe.label
            summary = None
            if workers > 1:  # the budget file is read (and refused) here, before any worker starts
                from ..gateway.build import gateway_parts, metrics_enabled

                parts = gateway_parts(probe, budgets_file, metrics=False, plan=plan, workers=workers)
                summary = parts.summary(metrics_served=metrics_enabled(metrics))
        finally:
            probe.close()
    except BaseException:
        sock.close()
        raise
    options = _Options(url, upstream, plan, unwrap_envelopes, max_body_bytes, budgets_file, metrics, workers)
    options = replace(options, reuse_store=reuse_store, warm_start=warm_start)
    click.echo(f"cachewise proxy on http://{host}:{port_of(sock)} -> {upstream} (ledger {label})")
    if summary is None:
        _serve_one(options, sock)
        return
    for line in summary:
        click.echo(line)
    click.echo(f"{workers} workers; one that dies is replaced")
    _serve_many(options, sock, workers)


@dataclass(frozen=True)
class _Options:
    """What each worker needs to build its app (picklable: workers are spawned with it)."""

    url: URL
    upstream: str
    plan: bool
    unwrap_envelopes: bool
    max_body_bytes: int | None
    budgets_file: Path | None
    metrics: bool | None
    workers: int = 1
    reuse_store: str | None = None
    warm_start: bool = True


def _store_url(value: str | None) -> str | None:
    """``--reuse-store``: a URL of a kind the fleet knows (checked before any process starts)."""
    if value is None:
        return None
    from ..fleet.stores import check_url

    try:
        return check_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--reuse-store") from exc


class _ClosingApp:
    """``app``, closing ``ledger`` (flushing its rows) once the server's lifespan has shut down.

    Once the lifespan has started, the garbage collector is set for serving (:func:`_settle_gc`).
    """

    def __init__(self, app: ASGIApp, ledger: Ledger) -> None:
        self.app = app
        self.ledger = ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                _settle_gc()
            elif message["type"] == "lifespan.shutdown.complete":
                self.ledger.close()  # every row recorded is committed (or spooled) before the worker exits
            await send(message)

        await self.app(scope, receive, sending)


#: Allocations between two collections of the youngest generation while serving (Python's: 700).
_YOUNG_THRESHOLD = 10_000


def _settle_gc() -> None:
    """The garbage collector set for serving, once the proxy has started.

    What the process holds at startup (modules, the price book, the planner, the ledger's engine:
    about 280,000 objects) is moved out of the collector's sight (:func:`gc.freeze`): otherwise
    every full collection walks all of it again, about 0.2 s of CPU each, several times a minute
    under load. Those objects live until the process exits anyway; what is made after startup is
    collected as before. (No collection first: it would hold the server's start by as long, and
    startup leaves few cycles behind, a few dozen objects in the collections that ran during it.)

    And the youngest generation is collected every 10,000 allocations instead of 700: each of
    those collections also walks the objects of the calls in flight, so that fewer of them cut the
    collector's CPU per request about tenfold (docs/proxy.md has the figures), for at most a few
    thousand more objects of cyclic garbage.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_YOUNG_THRESHOLD, middle, old)


def _build_app(options: _Options, announce: bool = False) -> _ClosingApp:
    """One process's app: its own ledger (and writer), planner, gateway parts and upstream pool."""
    from ..gateway.build import gateway_parts
    from ..integrations.proxy import create_proxy_app
    from ..integrations.tracker import CallTracker
    from ..ledger import Ledger

    ledger = Ledger(options.url)
    planner = None
    if options.plan:
        from ..integrations.proxy_planner import upstream_planner

        planner = upstream_planner(options.upstream)
        from ..fleet import attach

        attach(planner, store=options.reuse_store, ledger=ledger if options.warm_start else None)
    parts = gateway_parts(
        ledger, options.budgets_file, metrics=options.metrics, plan=options.plan, workers=options.workers
    )
    tracker = CallTracker(ledger=ledger, planner=planner, sinks=parts.sinks)
    from ..integrations.batch_planner import BatchPlanner
    from ..integrations.fanout import FanOut

    fanout = FanOut("hold")
    if options.reuse_store:
        from ..failopen import record_failure
        from ..fleet import open_leases

        try:  # the workers hold a cold prefix for each other too (docs/planner.md, "Fan-out")
            fanout.leases = open_leases(options.reuse_store)
        except Exception as exc:
            record_failure("fanout leases (fan-out is held within this worker only)", exc)

    app = parts.wrap(
        create_proxy_app(
            tracker,
            upstream=options.upstream,
            unwrap_envelopes=options.unwrap_envelopes,
            max_body_bytes=options.max_body_bytes,
            admit=parts.admit,
            batch_planner=BatchPlanner() if options.plan else None,
            fanout=fanout,
        )
    )
    if announce:
        for line in parts.summary():
            click.echo(line)
    return _ClosingApp(app, ledger)


def _serve_one(options: _Options, sock: socket.socket) -> None:
    """Serve in this process (``--workers 1``)."""
    app = _build_app(options, announce=True)
    # uvicorn shuts down gracefully on SIGTERM, then raises it again: make that an interrupt, so the
    # process exits 0 once the lifespan shutdown has closed the ledger (a systemd stop loses no row).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(app, sock, log_level="warning", access_log=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
        app.ledger.close()  # no-op after the lifespan shutdown closed it


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


#: Seconds a worker may take to answer the supervisor before it is deemed hung and replaced.
_HEALTHCHECK_SECONDS = 60


def _serve_many(options: _Options, sock: socket.socket, workers: int) -> None:
    """``workers`` processes under uvicorn's supervisor (``uvicorn.supervisors.Multiprocess``).

    The workers are spawned with the bound socket and accept on it (the kernel spreads connections);
    each builds its app (:func:`_build_app`) at startup. The supervisor checks every worker twice a
    second and replaces one that died or stopped answering; SIGHUP replaces them all one by one;
    SIGTTIN / SIGTTOU add or remove one. SIGINT / SIGTERM stop them: each finishes its calls in flight
    and closes (flushes) its ledger before it exits.
    """
    import logging

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    sys.stdout.flush()
    config = uvicorn.Config(
        partial(_build_app, options),
        factory=True,
        workers=workers,
        log_level="warning",
        access_log=False,
        # a worker that does not answer the supervisor's ping in this time is killed and replaced;
        # a spawned worker imports cachewise before it answers, which takes seconds on a busy host
        timeout_worker_healthcheck=_HEALTHCHECK_SECONDS,
    )
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)  # the supervisor's own lines: restarts
    supervisor = Multiprocess(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        sock.close()
    failed = [p.exitcode for p in supervisor.processes if p.exitcode not in (0, None, -signal.SIGTERM)]
    if failed:
        raise CliError(f"{len(failed)} of {workers} proxy workers exited with an error (codes {failed})")
