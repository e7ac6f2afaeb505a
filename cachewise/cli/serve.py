"""Serve an ASGI app for ``cachewise emulate`` and ``cachewise proxy`` on a socket bound here first,
so an unknown host or a busy port is an ``Error:`` naming the option, not uvicorn's exit 3."""

from __future__ import annotations

import socket
from typing import Any, Literal

import click

from .errors import CliError

__all__ = ["bind", "serve"]


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``; an unknown host or a port in use is an ``Error:``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise click.BadParameter(f"{host!r}: {reason}", param_hint="'--host'") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CliError(f"--host {host} --port {port}: cannot listen: {exc.strerror or exc}") from exc
    return sock


def port_of(sock: socket.socket) -> int:
    """The port ``sock`` is bound to (the free port chosen for ``--port 0``)."""
    return int(sock.getsockname()[1])


def serve(
    app: Any,
    sock: socket.socket,
    *,
    log_level: str,
    lifespan: Literal["auto", "on", "off"] = "auto",
    access_log: bool = True,
) -> None:
    """Run ``app`` with uvicorn on ``sock`` until interrupted; the socket is closed after.

    ``access_log=False``: no access log line, and none of its work per request (uvicorn formats
    the line's parts before its logger drops it below ``info``).
    """
    import uvicorn

    where = sock.getsockname()
    config = uvicorn.Config(app, log_level=log_level, lifespan=lifespan, access_log=access_log)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C during shutdown
        pass
    finally:
        sock.close()
    if not server.started:
        raise CliError(f"the server on {where[0]}:{where[1]} did not start; see the log above")
