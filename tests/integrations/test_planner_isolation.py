"""Planning never changes or breaks the user's request (issue 10, item 5).

A planner (ours or the user's) works on its own deep copy: one that edits the request in place
and then raises leaves nothing behind in what is sent; a plan whose body cannot be serialised is
dropped and the bytes the user wrote go out. Checked through the wrapped sync and async SDK
clients and the proxy, by comparing the bytes that reach the emulator with and without cachewise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import anthropic
import httpx2
import pytest

import cachewise
from cachewise.emulator import EmulatorServer
from cachewise.failopen import internal_failures, raising, reset_failures
from cachewise.integrations.proxy import create_proxy_app
from cachewise.integrations.tracker import CallTracker
from cachewise.ledger import Ledger
from cachewise.planner import Breakpoint, Plan

from .conftest import API_KEY
from .recording import AsyncRecording, SyncRecording
from .test_proxy import serve

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 16,
    "system": [{"type": "text", "text": "A stable manual. " * 600}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Where is the exit?"}]}],
}


class MutatesThenRaises:
    """A user's planner with a bug: edits the request it was given in place, then fails."""

    def plan(self, request: dict[str, Any], *, record: bool = True) -> Any:
        request["system"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
        request["messages"][0]["content"][0]["text"] = "changed by the planner"
        request["messages"].append({"role": "assistant", "content": "leaked"})
        raise RuntimeError("planner bug after editing")

    async def aplan(self, request: dict[str, Any], *, record: bool = True) -> Any:
        return self.plan(request, record=record)

    def observe(self, plan: Any, usage: Any, at: datetime) -> None:
        raise AssertionError("never observed")


class Unserialisable:
    """A user's planner whose plan carries a body that is not JSON."""

    def plan(self, request: dict[str, Any], *, record: bool = True) -> Plan:
        body = {**request, "metadata": {"user_id": object()}}
        point = Breakpoint(
            position=0, path="system[0]", tokens=2000, counted=False, ttl="5m", reason="test", prefix_hash="h"
        )
        return Plan(
            request=body, model=str(request["model"]), planned_at=datetime.now(UTC), breakpoints=(point,)
        )

    async def aplan(self, request: dict[str, Any], *, record: bool = True) -> Plan:
        return self.plan(request, record=record)

    def observe(self, plan: Any, usage: Any, at: datetime) -> None:
        raise AssertionError("never observed")


PLANNERS: list[type] = [MutatesThenRaises, Unserialisable]
FAILURE: dict[type, str] = {MutatesThenRaises: "planner", Unserialisable: "planner (body not serialisable)"}


@pytest.fixture(autouse=True)
def _fail_open() -> Iterator[None]:
    reset_failures()
    with raising(False):  # the behaviour under test is the production one
        yield


def _one_unplanned_row(ledger: Ledger) -> None:
    ledger.flush()
    (row,) = ledger.calls()
    assert row.status == "ok"
    assert not row.planned


@pytest.mark.parametrize("planner", PLANNERS, ids=lambda p: p.__name__)
def test_sync_client_sends_the_bytes_the_user_wrote(
    planner: type, emulator: EmulatorServer, ledger: Ledger
) -> None:
    recording = SyncRecording()
    http = httpx2.Client(transport=recording)
    with anthropic.Anthropic(
        api_key=API_KEY, base_url=emulator.base_url, max_retries=0, http_client=http
    ) as client:
        client.messages.create(**BODY)
        wrapped = cachewise.wrap(client, ledger=ledger, planner=planner())
        assert wrapped.messages.create(**BODY).content
    plain, through = recording.bodies()
    assert through == plain
    assert internal_failures()[FAILURE[planner]] == 1
    _one_unplanned_row(ledger)


@pytest.mark.parametrize("planner", PLANNERS, ids=lambda p: p.__name__)
async def test_async_client_sends_the_bytes_the_user_wrote(
    planner: type, emulator: EmulatorServer, ledger: Ledger
) -> None:
    recording = AsyncRecording()
    http = httpx2.AsyncClient(transport=recording)
    async with anthropic.AsyncAnthropic(
        api_key=API_KEY, base_url=emulator.base_url, max_retries=0, http_client=http
    ) as client:
        await client.messages.create(**BODY)
        wrapped = cachewise.wrap(client, ledger=ledger, planner=planner())
        assert (await wrapped.messages.create(**BODY)).content
    plain, through = recording.bodies()
    assert through == plain
    assert internal_failures()[FAILURE[planner]] == 1
    _one_unplanned_row(ledger)


@pytest.mark.parametrize("planner", PLANNERS, ids=lambda p: p.__name__)
def test_proxy_sends_the_bytes_the_user_wrote(
    planner: type, emulator: EmulatorServer, ledger: Ledger
) -> None:
    recording = AsyncRecording()
    tracker = CallTracker(ledger=ledger, planner=planner())
    content = httpx2.Request("POST", "http://x", json=BODY).read()
    for base_url in serve(create_proxy_app(tracker, upstream=emulator.base_url, transport=recording)):
        reply = httpx2.post(
            f"{base_url}/v1/messages",
            content=content,
            headers={"x-api-key": API_KEY, "content-type": "application/json"},
        )
        assert reply.status_code == 200, reply.text
    assert recording.bodies() == [content]
    assert internal_failures()[FAILURE[planner]] == 1
    _one_unplanned_row(ledger)


def test_the_planner_gets_its_own_copy_at_every_depth() -> None:
    """What the planner receives is not the user's object, at any depth."""
    seen: list[Mapping[str, Any]] = []

    class Spy(MutatesThenRaises):
        def plan(self, request: dict[str, Any], *, record: bool = True) -> Any:
            seen.append(request)
            return None

    user: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    tracker = CallTracker(ledger=None, planner=Spy())
    prepared = tracker.prepare(user)
    (given,) = seen
    assert given == user
    assert given is not user
    assert given["messages"] is not user["messages"]
    assert given["messages"][0]["content"][0] is not user["messages"][0]["content"][0]
    assert prepared.body is user  # nothing planned: the user's own body goes out
