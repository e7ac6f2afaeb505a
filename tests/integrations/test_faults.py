"""Faults: the caller sees exactly what it would see without cachewise; no row lost, none doubled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

import cachewise
from cachewise.emulator import EmulatorServer
from cachewise.failopen import internal_failures, raising, reset_failures
from cachewise.ledger import Ledger
from cachewise.planner import Breakpoint, Plan

from .conftest import API_KEY

MODEL = "claude-sonnet-4-6"
BODY: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 32,
    "system": [{"type": "text", "text": "Context. " * 900, "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "hello"}],
}


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=2) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anthropic.Anthropic, "_calculate_retry_timeout", lambda *a, **k: 0.01)


def test_429_then_529_then_success_one_billed_row(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    emulator.emulator.faults.add("rate_limit", retry_after=0)
    emulator.emulator.faults.add("overloaded")
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False)
    message = wrapped.messages.create(**BODY)
    assert message.content
    ledger.flush()
    rows = ledger.calls()
    assert sorted(r.status for r in rows) == ["error", "error", "ok"]
    assert {r.error_type for r in rows if r.status == "error"} == {"rate_limit_error", "overloaded_error"}
    assert all(r.cost is not None and r.cost.cost_total == 0 for r in rows if r.status == "error")
    (billed,) = emulator.emulator.bill()
    (ok,) = [r for r in rows if r.status == "ok"]
    assert ok.request_id == billed["request_id"]


def test_retries_exhausted_raise_the_same_error(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    emulator.emulator.faults.add("overloaded", count=3)
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False)
    with pytest.raises(anthropic.OverloadedError):
        wrapped.messages.create(**BODY)
    ledger.flush()
    assert [r.status for r in ledger.calls()] == ["error"] * 3


def test_stream_cut_midway_is_recorded_incomplete_and_the_caller_sees_the_break(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    emulator.emulator.faults.add("stream_cut", after_events=4)
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False)
    with pytest.raises((httpx2.HTTPError, anthropic.APIError)):
        for _ in wrapped.messages.create(**BODY, stream=True):
            pass
    ledger.flush()
    (row,) = ledger.calls()
    assert row.incomplete
    assert row.usage.prompt_tokens > 0


def test_error_event_mid_stream(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    emulator.emulator.faults.add("stream_error", after_events=3)
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False)
    with pytest.raises(anthropic.APIStatusError) as info:
        for _ in wrapped.messages.create(**BODY, stream=True):
            pass
    assert info.value.type == "overloaded_error"
    ledger.flush()
    (row,) = ledger.calls()
    assert row.incomplete
    assert row.error_type == "overloaded_error"


class ExplodingPlanner:
    def plan(self, request: dict[str, Any]) -> Any:
        raise RuntimeError("planner bug")

    def observe(self, plan: Any, usage: Any, at: Any) -> None:
        raise AssertionError("never observed")


def test_planner_raising_sends_the_request_as_written(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    reset_failures()
    wrapped = cachewise.wrap(client, ledger=ledger, planner=ExplodingPlanner())
    with raising(False):
        message = wrapped.messages.create(**BODY)
    assert message.usage.cache_creation_input_tokens  # the caller's own marker still worked
    assert internal_failures()["planner"] == 1
    ledger.flush()
    assert len(ledger.calls()) == 1
    with pytest.raises(RuntimeError, match="planner bug"):  # under pytest, by default, it re-raises
        wrapped.messages.create(**BODY)


def test_unwritable_ledger_does_not_break_the_call(
    emulator: EmulatorServer, client: anthropic.Anthropic, tmp_path: Path
) -> None:
    class BrokenLedger(Ledger):
        def record(self, record: Any) -> None:
            raise OSError("disk full")

    reset_failures()
    broken = BrokenLedger(tmp_path / "l.sqlite")
    wrapped = cachewise.wrap(client, ledger=broken, planner=False)
    with raising(False):
        plain = client.messages.create(**BODY)
        through = wrapped.messages.create(**BODY)
    assert through.content == plain.content
    assert internal_failures()["ledger record"] == 1
    broken.close()


def test_error_responses_reach_the_caller_unchanged(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False)
    with pytest.raises(anthropic.NotFoundError) as wrapped_error:
        wrapped.messages.create(**{**BODY, "model": "claude-nope-1"})
    with pytest.raises(anthropic.NotFoundError) as plain_error:
        client.messages.create(**{**BODY, "model": "claude-nope-1"})
    assert wrapped_error.value.body == {
        **plain_error.value.body,
        "request_id": wrapped_error.value.request_id,
    }
    ledger.flush()
    (row,) = ledger.calls()
    assert row.status == "error"
    assert row.error_type == "not_found_error"


def test_a_broken_clock_never_breaks_the_call(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    def clock() -> Any:
        raise RuntimeError("clock bug")

    reset_failures()
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False, clock=clock)
    with raising(False):
        assert wrapped.messages.create(**BODY).content
    assert internal_failures()["prepare"] == 1


class CountingPlanner:
    """Plans nothing; remembers whether each call was counted as an arrival."""

    def __init__(self) -> None:
        self.records: list[bool] = []

    def plan(self, request: dict[str, Any], *, record: bool = True) -> Any:
        self.records.append(record)
        return None

    def observe(self, plan: Any, usage: Any, at: Any) -> None:
        pass


def test_a_retried_attempt_is_not_a_new_arrival(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    emulator.emulator.faults.add("overloaded")
    planner = CountingPlanner()
    cachewise.wrap(client, ledger=ledger, planner=planner).messages.create(**BODY)
    assert planner.records == [True, False]  # the first attempt counts, its retry does not


class OverMarkingPlanner:
    """A buggy planner: puts cache_control on five blocks, which the API refuses with a 400."""

    def plan(self, request: dict[str, Any]) -> Plan:
        body = dict(request)
        body["system"] = [
            {"type": "text", "text": f"part {i}. " * 50, "cache_control": {"type": "ephemeral"}}
            for i in range(5)
        ]
        marks = tuple(
            Breakpoint(
                position=i,
                path=f"system.{i}",
                tokens=100,
                counted=False,
                ttl="5m",
                reason="bug",
                prefix_hash="h",
            )
            for i in range(5)
        )
        return Plan(
            request=body, model=str(request["model"]), planned_at=datetime.now(UTC), breakpoints=marks
        )

    def observe(self, plan: Any, usage: Any, at: Any) -> None:
        pass


def test_a_request_the_api_rejects_over_our_markers_is_resent_as_written(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    reset_failures()
    wrapped = cachewise.wrap(client, ledger=ledger, planner=OverMarkingPlanner())
    with raising(False):
        message = wrapped.messages.create(**BODY)
    assert message.content
    assert internal_failures()["planner (request rejected)"] == 1
    (billed,) = emulator.emulator.bill()  # the refused attempt was never billed
    ledger.flush()
    (row,) = ledger.calls()
    assert row.status == "ok"
    assert row.request_id == billed["request_id"]
    assert not row.planned


def test_no_response_at_all_is_an_error_row(ledger: Ledger) -> None:
    with anthropic.Anthropic(api_key=API_KEY, base_url="http://127.0.0.1:9", max_retries=0) as unreachable:
        wrapped = cachewise.wrap(unreachable, ledger=ledger, planner=False)
        with pytest.raises(anthropic.APIConnectionError):
            wrapped.messages.create(**BODY)
    ledger.flush()
    (row,) = ledger.calls()
    assert row.status == "error"
    assert row.request_id.startswith("local_")
    assert row.cost is not None
    assert row.cost.cost_total == 0
