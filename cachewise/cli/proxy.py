"""``cachewise proxy``: plan and record Messages calls for any language over HTTP."""

from __future__ import annotations

import click

__all__ = ["proxy"]


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind. Loopback by default; binding elsewhere exposes the proxy to your network.",
)
@click.option(
    "--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
@click.option(
    "--upstream",
    default="https://api.anthropic.com",
    show_default=True,
    help="Where requests are forwarded (the API, a gateway, or `cachewise emulate`).",
)
@click.option(
    "--db", "db", default=None, help="Ledger path or SQLAlchemy URL (default: CACHEWISE_DB or user data dir)."
)
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
def proxy(
    host: str,
    port: int,
    upstream: str,
    db: str | None,
    plan: bool,
    unwrap_envelopes: bool,
    max_body_bytes: int | None,
) -> None:
    """Serve a local Messages API proxy; set ANTHROPIC_BASE_URL=http://HOST:PORT in your client."""
    import uvicorn

    from ..integrations.proxy import create_proxy_app
    from ..integrations.tracker import CallTracker
    from ..ledger import Ledger

    ledger = Ledger(db)
    planner = None
    if plan:
        from ..integrations.proxy_planner import upstream_planner

        planner = upstream_planner(upstream)
    tracker = CallTracker(ledger=ledger, planner=planner)
    app = create_proxy_app(
        tracker, upstream=upstream, unwrap_envelopes=unwrap_envelopes, max_body_bytes=max_body_bytes
    )
    click.echo(f"cachewise proxy on http://{host}:{port} -> {upstream} (ledger {ledger.label})")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        ledger.close()
