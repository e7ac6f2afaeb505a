"""``cachewise proxy``: plan and record Messages calls for any language over HTTP."""

from __future__ import annotations

from pathlib import Path

import click

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
) -> None:
    """Serve a local Messages API proxy; set ANTHROPIC_BASE_URL=http://HOST:PORT in your client."""
    from ..integrations.proxy import create_proxy_app
    from ..integrations.tracker import CallTracker
    from ..ledger import Ledger

    url = ledger_url(db, must_exist=False)
    sock = bind(host, port)
    try:
        ledger = Ledger(url)
    except BaseException:
        sock.close()
        raise
    planner = None
    if plan:
        from ..integrations.proxy_planner import upstream_planner

        planner = upstream_planner(upstream)
    from ..gateway.build import gateway_parts

    parts = gateway_parts(ledger, budgets_file, metrics=metrics, plan=plan)
    tracker = CallTracker(ledger=ledger, planner=planner, sinks=parts.sinks)
    app = parts.wrap(
        create_proxy_app(
            tracker,
            upstream=upstream,
            unwrap_envelopes=unwrap_envelopes,
            max_body_bytes=max_body_bytes,
            admit=parts.admit,
        )
    )
    click.echo(f"cachewise proxy on http://{host}:{port_of(sock)} -> {upstream} (ledger {ledger.label})")
    for line in parts.summary():
        click.echo(line)
    try:
        serve(app, sock, log_level="warning")
    finally:
        ledger.close()
