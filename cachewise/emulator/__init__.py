"""A Claude-compatible local emulator that caches and bills like the API (docs/emulator.md).

::

    from cachewise.emulator import EmulatorServer

    with EmulatorServer() as server:              # uvicorn on a free loopback port
        client = anthropic.Anthropic(api_key="k", base_url=server.base_url)
        client.messages.create(...)
        server.emulator.bill()                    # every billed request, priced

Or without a socket: ``httpx2.Client(transport=EmulatorTransport(Emulator()))``.
"""

from __future__ import annotations

from .app import create_app
from .clock import DEFAULT_START, Clock
from .emulator import Emulator, HttpRequest, HttpResponse
from .engine import LOOKBACK, CacheEngine, Entry, Ticket
from .errors import ApiError, StreamCut
from .faults import Fault, Faults
from .positions import Layout, ServerMarker, ServerPosition, layout
from .server import EmulatorServer
from .tokenizer import count_text
from .transport import (
    AsyncEmulatorTransport,
    AsyncHttpxEmulatorTransport,
    EmulatorTransport,
    HttpxEmulatorTransport,
)

__all__ = [
    "DEFAULT_START",
    "LOOKBACK",
    "ApiError",
    "AsyncEmulatorTransport",
    "AsyncHttpxEmulatorTransport",
    "CacheEngine",
    "Clock",
    "Emulator",
    "EmulatorServer",
    "EmulatorTransport",
    "Entry",
    "Fault",
    "Faults",
    "HttpRequest",
    "HttpResponse",
    "HttpxEmulatorTransport",
    "Layout",
    "ServerMarker",
    "ServerPosition",
    "StreamCut",
    "Ticket",
    "count_text",
    "create_app",
    "layout",
]
