"""Unit-level checks: tokenizer, replies, transports, the CLI, the plugin and the public API."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import httpx2
from click.testing import CliRunner
from emulator_helpers import MODEL, text
from hypothesis import given, settings
from hypothesis import strategies as st

import cachewise.emulator as emulator_pkg
from cachewise.cli import cli
from cachewise.emulator import (
    AsyncEmulatorTransport,
    AsyncHttpxEmulatorTransport,
    Emulator,
    HttpxEmulatorTransport,
    layout,
)
from cachewise.emulator.responses import example_value, generate
from cachewise.emulator.tokenizer import count_text, count_text_reference

HI = [{"role": "user", "content": "hi"}]


def test_tokenizer_rules() -> None:
    assert count_text("tok") == 1
    assert count_text("word") == 1
    assert count_text("hello") == 2  # hell + o
    assert count_text("12345") == 2  # 123 + 45
    assert count_text("a, b!") == 4
    assert count_text("  \n\t ") == 0
    assert count_text("héllo") == 3  # h, é, llo
    assert count_text("日本") == 2


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_tokenizer_is_additive_across_whitespace(a: str, b: str) -> None:
    assert count_text(f"{a} {b}") == count_text(a) + count_text(b)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.text(alphabet="abcXYZ019 .,é\n", max_size=600))
def test_fast_tokenizer_matches_the_reference_rule(value: str) -> None:
    assert count_text(value) == count_text_reference(value)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=80), st.binary(min_size=4, max_size=16))
def test_reply_never_exceeds_max_tokens(max_tokens: int, salt: bytes) -> None:
    body = {"model": MODEL, "max_tokens": max_tokens, "messages": [{"role": "user", "content": salt.hex()}]}
    seed = (salt * 32)[:32]
    reply = generate(body, seed)
    assert 1 <= reply.output_tokens <= max_tokens
    assert reply.output_tokens == max(1, count_text(reply.content[0]["text"]))
    assert reply.stop_reason in ("end_turn", "max_tokens")


def test_stop_sequence(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model=MODEL, max_tokens=64, messages=HI)
    words = plain.content[0].text.split()  # type: ignore[union-attr]
    stop = words[2]
    cut = client.messages.create(model=MODEL, max_tokens=64, messages=HI, stop_sequences=[stop])
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
    assert cut.content[0].text == plain.content[0].text[: plain.content[0].text.index(stop)]  # type: ignore[union-attr]
    short = client.messages.create(model=MODEL, max_tokens=3, messages=HI)
    assert (short.stop_reason, short.usage.output_tokens) == ("max_tokens", 3)


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 20},
        "days": {"type": "integer", "minimum": 3},
        "unit": {"enum": ["c", "f"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "nested": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
        "optional": {"type": "string"},
    },
    "required": ["city", "days", "unit", "tags", "nested"],
}


def test_example_value_follows_the_schema() -> None:
    value = example_value(SCHEMA)
    assert set(value) == {"city", "days", "unit", "tags", "nested"}
    assert isinstance(value["city"], str) and len(value["city"]) >= 20
    assert value["days"] == 3 and value["unit"] == "c"
    assert len(value["tags"]) == 2 and value["nested"] == {"ok": True}


def test_tool_use_when_forced_and_sometimes_on_auto(client: anthropic.Anthropic) -> None:
    tools: Any = [{"name": "weather", "description": "w", "input_schema": SCHEMA}]
    forced = client.messages.create(
        model=MODEL, max_tokens=200, messages=HI, tools=tools, tool_choice={"type": "tool", "name": "weather"}
    )
    assert forced.stop_reason == "tool_use"
    [block] = forced.content
    assert block.type == "tool_use" and block.name == "weather" and block.input["days"] == 3  # type: ignore[index]
    with client.messages.stream(
        model=MODEL, max_tokens=200, messages=HI, tools=tools, tool_choice={"type": "any"}
    ) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].input == block.input  # type: ignore[union-attr]
    reasons = {
        client.messages.create(
            model=MODEL, max_tokens=200, tools=tools, messages=[{"role": "user", "content": f"q{i}"}]
        ).stop_reason
        for i in range(20)
    }
    assert reasons == {"tool_use", "end_turn"}  # auto: deterministic, sometimes a tool
    none = client.messages.create(
        model=MODEL, max_tokens=64, messages=HI, tools=tools, tool_choice={"type": "none"}
    )
    assert none.stop_reason != "tool_use"


async def test_async_httpx2_transport_with_the_sdk() -> None:
    emulator = Emulator()
    http = httpx2.AsyncClient(transport=AsyncEmulatorTransport(emulator))
    async with anthropic.AsyncAnthropic(api_key="k", base_url="http://emu", http_client=http) as client:
        message = await client.messages.create(
            model=MODEL, max_tokens=8, system=[text(1997, mark=True)], messages=HI
        )
        stream = await client.messages.create(model=MODEL, max_tokens=8, messages=HI, stream=True)
        kinds = [event.type async for event in stream]
    assert message.usage.cache_creation_input_tokens == 2000
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"


def test_plain_httpx_transports() -> None:
    emulator = Emulator()
    body = {"model": MODEL, "max_tokens": 8, "messages": HI}
    with httpx.Client(transport=HttpxEmulatorTransport(emulator), base_url="http://emu") as http:
        response = http.post("/v1/messages", json=body, headers={"authorization": "Bearer k"})
        assert response.status_code == 200 and response.json()["usage"]["input_tokens"] == 11
        emulator.faults.add("stream_cut", after_events=1)
        try:
            with http.stream(
                "POST", "/v1/messages", json={**body, "stream": True}, headers={"x-api-key": "k"}
            ) as r:
                r.read()
        except httpx.RemoteProtocolError:
            pass
        else:  # pragma: no cover - the assertion below explains
            raise AssertionError("a stream_cut fault must surface as RemoteProtocolError")
    assert json.loads(response.text)["type"] == "message"


async def test_plain_httpx_async_transport() -> None:
    emulator = Emulator()
    async with httpx.AsyncClient(
        transport=AsyncHttpxEmulatorTransport(emulator), base_url="http://emu"
    ) as http:
        response = await http.get("/v1/models/claude-opus-4-5", headers={"x-api-key": "k"})
    assert response.json()["id"] == "claude-opus-4-5-20251101"


def test_inprocess_plugin_fixture(claude_emulator_inprocess_client: anthropic.Anthropic) -> None:
    assert claude_emulator_inprocess_client.messages.count_tokens(model=MODEL, messages=HI).input_tokens == 11


def test_layout_positions_and_hashes() -> None:
    body = {"system": "s", "messages": [{"role": "user", "content": "hi"}]}
    a = layout(body, MODEL)
    b = layout({"system": [{"type": "text", "text": "s"}], "messages": body["messages"]}, MODEL)
    # A string system is one text block: same positions, same hashes.
    assert [p.digest for p in a.positions] == [p.digest for p in b.positions]
    assert layout(body, "claude-opus-5").positions[0].digest != a.positions[0].digest  # per model


def test_cli_emulate_is_registered_with_help() -> None:
    result = CliRunner().invoke(cli, ["emulate", "--help"])
    assert result.exit_code == 0
    assert "Serve a local Claude API emulator" in result.output
    assert "--port" in result.output and "--batch-delay" in result.output


def test_public_api_all_is_sorted() -> None:
    names = emulator_pkg.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))  # constants, classes, functions
    for name in names:
        assert hasattr(emulator_pkg, name)
