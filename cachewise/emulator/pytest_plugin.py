"""pytest fixtures for testing against the emulator (registered as a ``pytest11`` plugin).

* ``claude_emulator_server`` (session): one :class:`EmulatorServer` on a free loopback port.
* ``claude_emulator`` (function): that server, reset (clock, cache, bill, faults) for the test.
* ``claude_emulator_client`` / ``claude_emulator_async_client``: ``anthropic`` clients
  pointed at it over the socket, with ``max_retries=0``.
* ``claude_emulator_inprocess``: a fresh :class:`Emulator` with no socket, and
  ``claude_emulator_inprocess_client`` an SDK client using :class:`EmulatorTransport`.

``@pytest.mark.claude_emulator(run_markers="run_end")`` on a test sets the reading of
markers inside a ``tool_use``/``tool_result`` run for the emulator fixtures it uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import httpx2
import pytest

from .emulator import Emulator
from .server import EmulatorServer
from .transport import EmulatorTransport

__all__ = [
    "claude_emulator",
    "claude_emulator_async_client",
    "claude_emulator_client",
    "claude_emulator_inprocess",
    "claude_emulator_inprocess_client",
    "claude_emulator_server",
]

TEST_API_KEY = "sk-ant-emulator-test"


@pytest.fixture(scope="session")
def claude_emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "claude_emulator(run_markers=...): configure the emulator fixtures of cachewise (docs/emulator.md)",
    )


def _configure(emulator: Emulator, request: pytest.FixtureRequest) -> Emulator:
    marker = request.node.get_closest_marker("claude_emulator")
    if marker is not None and "run_markers" in marker.kwargs:
        emulator.set_run_markers(marker.kwargs["run_markers"])
    return emulator


@pytest.fixture
def claude_emulator(claude_emulator_server: EmulatorServer, request: pytest.FixtureRequest) -> EmulatorServer:
    claude_emulator_server.emulator.reset()
    _configure(claude_emulator_server.emulator, request)
    return claude_emulator_server


@pytest.fixture
def claude_emulator_client(claude_emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        api_key=TEST_API_KEY, base_url=claude_emulator.base_url, max_retries=0
    ) as client:
        yield client


async def _async_client(claude_emulator: EmulatorServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key=TEST_API_KEY, base_url=claude_emulator.base_url, max_retries=0
    ) as client:
        yield client


try:  # the async fixture needs pytest-asyncio; the others work without it
    import pytest_asyncio
except ImportError:  # pragma: no cover - depends on the user's test environment
    pass
else:
    claude_emulator_async_client = pytest_asyncio.fixture(_async_client, name="claude_emulator_async_client")


@pytest.fixture
def claude_emulator_inprocess(request: pytest.FixtureRequest) -> Emulator:
    return _configure(Emulator(), request)


@pytest.fixture
def claude_emulator_inprocess_client(claude_emulator_inprocess: Emulator) -> Iterator[anthropic.Anthropic]:
    http = httpx2.Client(transport=EmulatorTransport(claude_emulator_inprocess))
    with anthropic.Anthropic(
        api_key=TEST_API_KEY, base_url="http://emulator.local", http_client=http, max_retries=0
    ) as client:
        yield client
