"""``cachewise emulate``: serve the Claude-compatible emulator over HTTP (docs/emulator.md)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import click

from ..emulator import Emulator
from ..emulator.app import create_app
from .options import PORT, KeyValue, count_option, pairs
from .serve import bind, port_of, serve

__all__ = ["emulate"]


def _parse_start(value: str | None) -> datetime | None:
    if value is None or value == "now":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 datetime", param_hint="--start") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8089, show_default=True, type=PORT, help="Port to listen on (0: any free port)."
)
@click.option("--start", help="Virtual clock start (ISO 8601, UTC if no zone); default 2026-11-20T12:00:00Z.")
@click.option("--real-time", is_flag=True, help="Follow the wall clock instead of a virtual clock.")
@count_option(
    "--batch-delay",
    default=0.0,
    minimum=0,
    help="Emulator seconds a Message Batch stays in_progress before it is processed.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=KeyValue("WORKSPACE", allow_empty=False),
    callback=pairs,
    metavar="KEY=WORKSPACE",
    help="Map an API key to a workspace id (repeatable).",
)
@click.option("--strict-keys", is_flag=True, help="Answer 401 to keys not given with --key.")
@click.option(
    "--run-markers",
    default="block",
    show_default=True,
    type=click.Choice(["block", "run_end"]),
    help="Where a cache_control marker inside a run of tool_use/tool_result blocks writes: "
    "at its block, or at the end of the run (docs/emulator.md).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="uvicorn log level.",
)
def emulate(
    host: str,
    port: int,
    start: str | None,
    real_time: bool,
    batch_delay: float,
    keys: dict[str, str],
    strict_keys: bool,
    run_markers: str,
    log_level: str,
) -> None:
    """Serve a local Claude API emulator that caches and bills like the real API.

    Point the SDK at it with base_url=http://HOST:PORT (any API key works unless
    --strict-keys). Control it under /_emulator/ (advance, reset, state, bill, faults, keys).
    """
    if not math.isfinite(batch_delay):
        raise click.BadParameter(
            f"{batch_delay!r} is not a finite number of seconds", param_hint="'--batch-delay'"
        )
    emulator = Emulator(
        start=_parse_start(start),
        real_time=real_time or start == "now",
        keys=keys,
        strict_keys=strict_keys,
        batch_delay=batch_delay,
        run_markers="run_end" if run_markers == "run_end" else "block",
    )
    sock = bind(host, port)
    click.echo(f"cachewise emulator on http://{host}:{port_of(sock)} (clock {emulator.now().isoformat()})")
    serve(create_app(emulator), sock, log_level=log_level, lifespan="off")
