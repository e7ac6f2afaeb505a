"""Why a call missed, against the emulator: each local reason, and each reason the API reports.

The wrapped client sends ``diagnostics.previous_message_id`` (the emulator answers it as the API
does); the tracker diffs the prefix locally. Both land on the call's ledger row.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

import cachewise
from cachewise.emulator import Emulator, EmulatorTransport
from cachewise.ledger import CallRecord, Ledger

MODEL = "claude-sonnet-4-6"
LONG = "The tutor explains each step of the proof slowly and checks the student's work. " * 120
OTHER = "The reviewer reads every clause of the contract and notes each risk it finds there. " * 120


@pytest.fixture
def emulator() -> Emulator:
    return Emulator()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "why.sqlite") as opened:
        yield opened


def _client(emulator: Emulator, ledger: Ledger, **options: Any) -> anthropic.Anthropic:
    import httpx2

    raw = anthropic.Anthropic(
        api_key="sk-ant-why", base_url="http://emulator", max_retries=0,
        http_client=httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator"),
    )  # fmt: skip
    return cachewise.wrap(raw, ledger=ledger, planner=False, clock=emulator.now, **options)


def _system(text: str, ttl: str | None = None) -> list[dict[str, Any]]:
    marker: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return [{"type": "text", "text": text, "cache_control": marker}]


def _ask(client: anthropic.Anthropic, **changes: Any) -> Any:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 16,
        "system": _system(LONG),
        "messages": [{"role": "user", "content": "Is 7 prime?"}],
    }
    body.update(changes)
    return client.messages.create(**body)


def _rows(ledger: Ledger) -> list[CallRecord]:
    ledger.flush()
    return sorted(ledger.calls(), key=lambda r: r.started_at)


def _last(ledger: Ledger) -> CallRecord:
    return _rows(ledger)[-1]


def test_a_hit_has_no_reason_and_the_first_call_is_a_cold_start(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    _ask(client)
    emulator.advance(10)
    second = _ask(client)
    assert second.usage.cache_read_input_tokens > 0
    first, hit = _rows(ledger)
    assert first.miss_reason == "no_previous" and first.api_miss_reason is None
    assert hit.miss_reason is None and hit.api_miss_reason is None and hit.miss_detail is None


def test_system_changed(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    first = _ask(client)
    emulator.advance(10)
    second = _ask(client, system=_system(OTHER))
    assert second.usage.cache_read_input_tokens == 0
    assert second.diagnostics is not None and second.diagnostics.cache_miss_reason is not None
    assert second.diagnostics.cache_miss_reason.type == "system_changed"
    row = _last(ledger)
    assert row.miss_reason == "prefix_changed"
    assert row.miss_detail is not None
    assert row.miss_detail["level"] == "system" and row.miss_detail["position"] == 0
    assert row.miss_detail["hash_before"] != row.miss_detail["hash_now"]
    assert row.miss_detail["tokens"] == first.usage.cache_creation_input_tokens
    assert row.api_miss_reason == "system_changed"
    assert row.api_missed_tokens == first.usage.cache_creation_input_tokens


def test_tools_changed(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    tool = {"name": "lookup", "description": "Look a word up.", "input_schema": {"type": "object"}}
    _ask(client, tools=[tool])
    emulator.advance(10)
    _ask(client, tools=[{**tool, "description": "Look a word up in the dictionary."}])
    row = _last(ledger)
    assert row.miss_reason == "prefix_changed" and row.miss_detail is not None
    assert row.miss_detail["level"] == "tools" and row.miss_detail["position"] == 0
    assert row.api_miss_reason == "tools_changed"


def test_model_changed(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    _ask(client)
    emulator.advance(10)
    _ask(client, model="claude-opus-4-6", system=_system(LONG * 3))
    row = _last(ledger)
    assert row.miss_reason == "model_changed"
    assert row.api_miss_reason == "model_changed"


def test_messages_changed(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)

    def turn(text: str) -> list[dict[str, Any]]:
        block = {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}
        return [{"role": "user", "content": [block]}]

    _ask(client, system="Be brief.", messages=turn(LONG))
    emulator.advance(10)
    _ask(client, system="Be brief.", messages=turn(OTHER))
    row = _last(ledger)
    assert row.miss_reason == "prefix_changed" and row.miss_detail is not None
    assert row.miss_detail["level"] == "messages" and row.miss_detail["position"] == 1
    assert row.api_miss_reason == "messages_changed"


def test_other_settings_changed_is_unavailable_to_the_api(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    tool = {"name": "lookup", "description": "Look a word up.", "input_schema": {"type": "object"}}
    _ask(client, tools=[tool], system=_system(LONG))
    emulator.advance(10)
    _ask(client, tools=[tool], tool_choice={"type": "any"})
    assert _last(ledger).api_miss_reason == "unavailable"


def test_expired(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    _ask(client)
    emulator.advance(301)
    second = _ask(client)
    assert second.usage.cache_read_input_tokens == 0
    row = _last(ledger)
    assert row.miss_reason == "expired" and row.miss_detail is not None
    assert row.miss_detail["gap_seconds"] == pytest.approx(301)
    assert row.api_miss_reason is None  # the prompt did not change: nothing to report


def test_one_hour_entry_outlives_five_minutes(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    _ask(client, system=_system(LONG, "1h"))
    emulator.advance(301)
    assert _ask(client, system=_system(LONG, "1h")).usage.cache_read_input_tokens > 0
    assert _last(ledger).miss_reason is None


def test_below_minimum(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    _ask(client, system=_system("Short."))
    emulator.advance(10)
    _ask(client, system=_system("Short."))
    assert _last(ledger).miss_reason == "below_minimum"


def test_beyond_lookback(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    _ask(client)
    emulator.advance(10)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": f"Note {i}."} for i in range(24)]
    blocks[-1]["cache_control"] = {"type": "ephemeral"}
    turns = [
        {"role": "user", "content": "Is 7 prime?"},
        {"role": "assistant", "content": "Yes."},
        {"role": "user", "content": blocks},
    ]
    second = _ask(client, system=[{"type": "text", "text": LONG}], messages=turns)
    assert second.usage.cache_read_input_tokens == 0
    row = _last(ledger)
    assert row.miss_reason == "beyond_lookback"
    assert row.api_miss_reason is None  # only entries were appended: the API sees no divergence


def test_concurrent_writer_not_yet_readable(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    gate = emulator.faults.hold()
    first = threading.Thread(target=_ask, args=(client,))
    first.start()
    assert emulator.wait_in_flight(1)
    second = _ask(client)
    gate.set()
    first.join(10)
    assert second.usage.cache_read_input_tokens == 0
    rows = {r.miss_reason for r in _rows(ledger)}
    assert "concurrent" in rows


def test_not_written(emulator: Emulator, ledger: Ledger) -> None:
    """The earlier request of the family carried no marker: it cached nothing to read."""
    client = _client(emulator, ledger)
    _ask(client, system=[{"type": "text", "text": LONG}])
    emulator.advance(10)
    second = _ask(client)
    assert second.usage.cache_read_input_tokens == 0 and second.usage.cache_creation_input_tokens > 0
    row = _last(ledger)
    assert row.miss_reason == "not_written" and row.api_miss_reason is None


def test_unexplained_when_the_entry_is_gone(emulator: Emulator, ledger: Ledger) -> None:
    """Same prefix, marker, model and a short gap, but the server no longer holds the entry (here the
    emulator's cache is emptied, as an eviction would): nothing local explains the miss."""
    client = _client(emulator, ledger)
    _ask(client)
    emulator.engine.reset()
    emulator.advance(10)
    assert _ask(client).usage.cache_read_input_tokens == 0
    row = _last(ledger)
    assert row.miss_reason == "unexplained" and row.miss_detail is not None
    assert row.miss_detail["tokens"] > 0


def test_no_marker(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger)
    _ask(client)
    emulator.advance(10)
    _ask(client, system=[{"type": "text", "text": LONG}])
    assert _last(ledger).miss_reason == "no_marker"


def test_diagnostics_off_sends_nothing(emulator: Emulator, ledger: Ledger) -> None:
    client = _client(emulator, ledger, diagnostics=False)
    _ask(client)
    emulator.advance(10)
    second = _ask(client, system=_system(OTHER))
    assert second.diagnostics is None
    row = _last(ledger)
    assert row.api_miss_reason is None and row.miss_reason == "prefix_changed"


def test_a_refused_parameter_falls_back_and_stays_off(
    emulator: Emulator, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cachewise.emulator import diagnostics as emulated
    from cachewise.emulator.errors import invalid

    def refuse(body: Any) -> tuple[bool, str | None]:
        if "diagnostics" in body:
            raise invalid("diagnostics: Extra inputs are not permitted")
        return False, None

    monkeypatch.setattr("cachewise.emulator.emulator.previous_id", refuse)
    assert emulated.previous_id is not refuse
    client = _client(emulator, ledger)
    _ask(client)
    emulator.advance(10)
    second = _ask(client)  # refused once over diagnostics: resent as written, and answered
    assert second.content
    third = _ask(client)
    assert third.content
    assert tracker_refused(client)
    assert len(_rows(ledger)) == 3


def tracker_refused(client: anthropic.Anthropic) -> bool:
    from cachewise.wrap import tracker_of

    return tracker_of(client).misses.refused
