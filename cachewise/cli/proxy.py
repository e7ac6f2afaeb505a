"""``cachewise proxy``: plan and record Messages calls for any language over HTTP."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import click
from sqlalchemy.engine import URL

from .errors import CliError
from .options import PORT, HttpUrl, db_option, ledger_url
from .serve import bind, port_of, serve

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
        label = probe.label
        probe.close()
    except BaseException:
        sock.close()
        raise
    options = _Options(url, upstream, plan, unwrap_envelopes, max_body_bytes, budgets_file, metrics)
    options = replace(options, reuse_store=reuse_store, warm_start=warm_start)
    click.echo(f"cachewise proxy on http://{host}:{port_of(sock)} -> {upstream} (ledger {label})")
    if workers == 1:
        _serve_one(options, sock)
        return
    _serve_many(options, sock, workers)


@dataclass(frozen=True)
class _Options:
    url: URL
    upstream: str
    plan: bool
    unwrap_envelopes: bool
    max_body_bytes: int | None
    budgets_file: Path | None
    metrics: bool | None
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


def _serve_one(options: _Options, sock: socket.socket, announce: bool = True) -> None:
    """One process: its own ledger (and writer), planner, gateway parts and upstream connection pool."""
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
    from ..gateway.build import gateway_parts

    parts = gateway_parts(ledger, options.budgets_file, metrics=options.metrics, plan=options.plan)
    tracker = CallTracker(ledger=ledger, planner=planner, sinks=parts.sinks)
    from ..integrations.batch_planner import BatchPlanner

    app = parts.wrap(
        create_proxy_app(
            tracker,
            upstream=options.upstream,
            unwrap_envelopes=options.unwrap_envelopes,
            max_body_bytes=options.max_body_bytes,
            admit=parts.admit,
            batch_planner=BatchPlanner() if options.plan else None,
        )
    )
    if announce:
        for line in parts.summary():
            click.echo(line)
    # uvicorn shuts down gracefully on SIGTERM, then raises it again: make that an interrupt, so the
    # ledger below is flushed and closed before the process exits (a systemd stop loses no row).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(app, sock, log_level="warning")
    finally:
        signal.signal(signal.SIGTERM, previous)
        ledger.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve_many(options: _Options, sock: socket.socket, workers: int) -> None:
    """``workers`` forked processes accept on the one listening socket; the kernel spreads connections.

    Each worker opens its own ledger (its own writer) after the fork. SIGINT / SIGTERM here are passed
    on to the workers, which finish their calls and flush their ledgers (uvicorn's graceful shutdown).
    """
    sys.stdout.flush()  # nothing buffered before the fork is printed again by a worker
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_serve_one, args=(options, sock, i == 0), daemon=False) for i in range(workers)
    ]
    for child in children:
        child.start()
    sock.close()

    def stop(signum: int, frame: object) -> None:
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for child in children:
            child.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [child.exitcode for child in children if child.exitcode not in (0, None)]
    if failed:
        raise CliError(f"{len(failed)} of {workers} proxy workers exited with an error (codes {failed})")
