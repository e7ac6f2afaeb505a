"""The emulator answers ``diagnostics.previous_message_id`` as the API does (the SDK's types)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cachewise.emulator import Emulator
from cachewise.emulator.emulator import HttpRequest

LONG = "Every answer cites the line of the statute it relies on and nothing else. " * 100


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 8,
        "system": [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Which law?"}],
    }
    body.update(changes)
    return body


def _send(emulator: Emulator, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = HttpRequest("POST", "/v1/messages", headers={"x-api-key": "k"}, body=json.dumps(body).encode())
    response = emulator.handle(request)
    return response.status, json.loads(response.body)


def _reason(emulator: Emulator, first: dict[str, Any], second: dict[str, Any]) -> Any:
    status, message = _send(emulator, first)
    assert status == 200
    status, answer = _send(emulator, {**second, "diagnostics": {"previous_message_id": message["id"]}})
    assert status == 200
    return answer["diagnostics"], message


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"model": "claude-opus-4-6"}, "model_changed"),
        ({"system": "Another system."}, "system_changed"),
        ({"tools": [{"name": "t", "input_schema": {"type": "object"}}]}, "tools_changed"),
        ({"messages": [{"role": "user", "content": "Which court?"}]}, "messages_changed"),
    ],
)
def test_each_divergence_is_named_with_the_tokens_it_missed(change: dict[str, Any], kind: str) -> None:
    emulator = Emulator()
    diagnostics, first = _reason(emulator, _body(), _body(**change))
    cached = first["usage"]["cache_creation_input_tokens"]
    assert cached > 0
    assert diagnostics == {"cache_miss_reason": {"type": kind, "cache_missed_input_tokens": cached}}


def test_appended_turns_and_moved_markers_are_no_divergence() -> None:
    emulator = Emulator()
    turns = [
        {"role": "user", "content": "Which law?"},
        {"role": "assistant", "content": "The first."},
        {"role": "user", "content": "And then?"},
    ]
    plain = [{"type": "text", "text": LONG}]
    diagnostics, _ = _reason(emulator, _body(), _body(messages=turns, system=plain))
    assert diagnostics is None


def test_unknown_previous_other_settings_and_opting_in_on_a_first_turn() -> None:
    emulator = Emulator()
    status, answer = _send(emulator, {**_body(), "diagnostics": {"previous_message_id": "msg_nope"}})
    assert status == 200
    assert answer["diagnostics"] == {"cache_miss_reason": {"type": "previous_message_not_found"}}
    status, answer = _send(emulator, {**_body(), "diagnostics": {"previous_message_id": None}})
    assert answer["diagnostics"] is None
    diagnostics, _ = _reason(
        emulator, _body(), _body(thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=2048)
    )
    assert diagnostics == {"cache_miss_reason": {"type": "unavailable"}}
    _, plain = _send(emulator, _body())
    assert "diagnostics" not in plain


def test_a_malformed_parameter_is_a_400_naming_it() -> None:
    status, answer = _send(Emulator(), {**_body(), "diagnostics": {"previous_message_id": 5}})
    assert status == 400
    assert "diagnostics.previous_message_id" in answer["error"]["message"]


def test_the_reply_does_not_depend_on_asking() -> None:
    one, two = Emulator(), Emulator()
    _, plain = _send(one, _body())
    _, asked = _send(two, {**_body(), "diagnostics": {"previous_message_id": None}})
    assert plain["content"] == asked["content"] and plain["usage"] == asked["usage"]


def test_the_sdk_parses_the_answer() -> None:
    from anthropic.types import Message

    emulator = Emulator()
    diagnostics, first = _reason(emulator, _body(), _body(system="Other."))
    parsed = Message.model_validate({**first, "diagnostics": diagnostics})
    assert parsed.diagnostics is not None and parsed.diagnostics.cache_miss_reason is not None
    assert parsed.diagnostics.cache_miss_reason.type == "system_changed"
