"""Fault injection and the control API, from Python and over HTTP."""

from __future__ import annotations

import threading
import time
from typing import Any

import anthropic
import httpx2
import pytest
from emulator_helpers import MODEL, text

from cachewise.emulator import EmulatorServer
from cachewise.errors import EmulatorError

HI = [{"role": "user", "content": "hi"}]
SYSTEM = [text(1997, mark=True)]


def test_faults_over_http_apply_to_the_next_n_requests(claude_emulator: EmulatorServer) -> None:
    with httpx2.Client(base_url=claude_emulator.base_url) as http:
        queued = http.post("/_emulator/faults", json=[{"kind": "overloaded", "count": 2}])
        assert queued.json() == {"queued": 1}
        assert http.get("/_emulator/faults").json()["faults"][0]["count"] == 2
    with anthropic.Anthropic(api_key="k", base_url=claude_emulator.base_url, max_retries=0) as client:
        for _ in range(2):
            with pytest.raises(anthropic.OverloadedError) as err:
                client.messages.create(model=MODEL, max_tokens=8, messages=HI)
            assert err.value.status_code == 529
        assert client.messages.create(model=MODEL, max_tokens=8, messages=HI).usage.input_tokens == 11


def test_sdk_retries_through_a_rate_limit(claude_emulator: EmulatorServer) -> None:
    claude_emulator.emulator.faults.add("rate_limit", retry_after=0.05)  # retry-after-ms: 50
    with anthropic.Anthropic(api_key="k", base_url=claude_emulator.base_url, max_retries=1) as client:
        message = client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    assert message.usage.input_tokens == 11
    assert len(claude_emulator.emulator.bill()) == 1  # the 429 attempt is not billed


def test_count_tokens_faults_only_match_count_tokens(claude_emulator: EmulatorServer) -> None:
    claude_emulator.emulator.faults.add("api_error", endpoint="count_tokens")
    with anthropic.Anthropic(api_key="k", base_url=claude_emulator.base_url, max_retries=0) as client:
        client.messages.create(model=MODEL, max_tokens=8, messages=HI)  # unaffected
        with pytest.raises(anthropic.InternalServerError):
            client.messages.count_tokens(model=MODEL, messages=HI)


def test_stream_cut_drops_the_connection_mid_stream(claude_emulator: EmulatorServer) -> None:
    claude_emulator.emulator.faults.add("stream_cut", after_events=3)
    seen: list[str] = []
    with anthropic.Anthropic(api_key="k", base_url=claude_emulator.base_url, max_retries=0) as client:

        def drain() -> None:
            stream = client.messages.create(
                model=MODEL, max_tokens=64, system=SYSTEM, messages=HI, stream=True
            )
            seen.extend(event.type for event in stream)

        with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)):
            drain()
    assert seen == ["message_start", "content_block_start"]  # the 3rd event (ping) is never parsed
    [row] = claude_emulator.emulator.bill()
    assert row["complete"] is False and row["endpoint"] == "stream"
    assert row["usage"]["cache_creation_input_tokens"] == 2000  # the prompt was processed and written


def test_error_event_after_http_200(claude_emulator: EmulatorServer) -> None:
    claude_emulator.emulator.faults.add("stream_error", after_events=4)
    with (
        anthropic.Anthropic(api_key="k", base_url=claude_emulator.base_url, max_retries=2) as client,
        pytest.raises(anthropic.APIStatusError) as err,
        client.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream,
    ):
        stream.get_final_message()
    assert err.value.status_code == 200
    assert not isinstance(err.value, anthropic.OverloadedError)  # docs/api-notes.md §5: plain APIStatusError
    assert err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert len(claude_emulator.emulator.bill()) == 1  # never retried


def test_delay_fault_over_http_holds_cache_writes_back(claude_emulator: EmulatorServer) -> None:
    base = claude_emulator.base_url
    with httpx2.Client(base_url=base) as http:
        http.post("/_emulator/faults", json=[{"kind": "delay", "seconds": 0.6}])
    results: dict[str, Any] = {}

    def slow() -> None:
        with anthropic.Anthropic(api_key="k", base_url=base, max_retries=0) as client:
            results["slow"] = client.messages.create(model=MODEL, max_tokens=8, system=SYSTEM, messages=HI)

    thread = threading.Thread(target=slow)
    thread.start()
    assert claude_emulator.emulator.wait_in_flight(1)
    with anthropic.Anthropic(api_key="k", base_url=base, max_retries=0) as client:
        fast = client.messages.create(model=MODEL, max_tokens=8, system=SYSTEM, messages=HI)
        thread.join(10)
        later = client.messages.create(model=MODEL, max_tokens=8, system=SYSTEM, messages=HI)
    assert fast.usage.cache_read_input_tokens == 0  # started before the slow writer's response began
    assert results["slow"].usage.cache_creation_input_tokens == 2000
    assert later.usage.cache_read_input_tokens == 2000


def test_control_api_over_http(claude_emulator: EmulatorServer) -> None:
    with (
        httpx2.Client(base_url=claude_emulator.base_url) as http,
        anthropic.Anthropic(api_key="k", base_url=claude_emulator.base_url, max_retries=0) as client,
    ):
        client.messages.create(model=MODEL, max_tokens=8, system=[text(1997, "1h")], messages=HI)
        state = http.get("/_emulator/state").json()
        assert state["now"] == "2026-11-20T12:00:00+00:00"
        [entry] = state["entries"]
        assert (entry["model"], entry["tokens"], entry["ttl"]) == (MODEL, 2000, "1h")
        assert entry["expires_at"] == "2026-11-20T13:00:00+00:00"
        assert entry["workspace"].startswith("wrkspc_")
        assert len(entry["prefix_hash"]) == 64
        moved = http.post("/_emulator/advance", json={"seconds": 3600}).json()
        assert moved["now"] == "2026-11-20T13:00:00+00:00"
        assert http.get("/_emulator/state").json()["entries"] == []  # expired
        [row] = http.get("/_emulator/bill").json()["rows"]
        assert row["usage"]["cache_creation"]["ephemeral_1h_input_tokens"] == 2000
        assert row["time"] == "2026-11-20T12:00:00+00:00"
        assert row["request_id"].startswith("req_") and row["message_id"].startswith("msg_")
        http.post("/_emulator/keys", json={"key-x": "wrkspc_x"})
        assert claude_emulator.emulator.keys == {"key-x": "wrkspc_x"}
        assert http.post("/_emulator/reset").json()["now"] == "2026-11-20T12:00:00+00:00"
        assert http.get("/_emulator/bill").json() == {"rows": [], "total": "0"}
        bad = http.post("/_emulator/faults", json=[{"kind": "meteor"}])
        assert bad.status_code == 400 and "faults.0.kind" in bad.json()["error"]["message"]
        assert http.post("/_emulator/advance", json={"seconds": -1}).status_code == 400


def test_python_control_api(claude_emulator: EmulatorServer) -> None:
    emulator = claude_emulator.emulator
    before = emulator.now()
    assert (emulator.advance(90) - before).total_seconds() == 90
    with pytest.raises(EmulatorError, match="kind"):
        emulator.faults.add("meteor")  # type: ignore[arg-type]
    fault = emulator.faults.add("overloaded", count=3)
    assert emulator.faults.pending() == [fault]
    emulator.reset()
    assert emulator.faults.pending() == [] and emulator.now() == before


def test_real_time_clock_moves() -> None:
    from cachewise.emulator import Emulator

    emulator = Emulator(real_time=True)
    first = emulator.now()
    time.sleep(0.01)
    assert emulator.now() > first
    assert (emulator.advance(60) - first).total_seconds() >= 60
