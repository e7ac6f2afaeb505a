"""Client input never gets a 500: the API's 400 ``invalid_request_error`` naming the field path.

On the emulator before this change, wrong field types got 200 and a bill, and deep
nesting or an unpaired surrogate got a 500; every case here failed then.
"""

from __future__ import annotations

import json
from typing import Any, get_args, get_type_hints

import pytest
from anthropic.types import (
    CacheControlEphemeralParam,
    MessageParam,
    OutputConfigParam,
    TextBlockParam,
    ThinkingConfigEnabledParam,
    ToolChoiceToolParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)
from anthropic.types.message_count_tokens_params import MessageCountTokensParams
from anthropic.types.message_create_params import MessageCreateParamsBase, MessageCreateParamsStreaming
from emulator_helpers import MODEL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachewise.emulator import Emulator, HttpRequest
from cachewise.emulator import validation as v

HI = [{"role": "user", "content": "hi"}]
KEY = {"x-api-key": "sk-test", "content-type": "application/json"}


def post(emu: Emulator, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    answer = emu.handle(HttpRequest("POST", path, headers=KEY, body=body))
    return answer.status, json.loads(answer.body)


def message_of(emu: Emulator, path: str, body: Any) -> str:
    status, data = post(emu, path, body if isinstance(body, bytes) else json.dumps(body).encode())
    assert status == 400, data
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    return str(data["error"]["message"])


def base(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 8, "messages": HI, **extra}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            base(
                messages=[
                    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": 5}]}
                ]
            ),
            "messages.0.content.1.text: Input should be a valid string",
        ),
        (base(max_tokens="8"), "max_tokens: Input should be a valid integer"),
        (base(max_tokens=True), "max_tokens: Input should be a valid integer"),
        (base(max_tokens=8.5), "max_tokens: Input should be a valid integer"),
        (base(model=7), "model: Input should be a valid string"),
        (base(messages={"role": "user"}), "messages: Input should be a valid list"),
        (base(messages=[{"role": "user", "content": 5}]), "messages.0.content: Input should be a valid list"),
        (
            base(messages=[{"role": "bot", "content": "x"}]),
            "messages.0.role: Input should be 'user', 'assistant' or 'system'",
        ),
        (base(system=5), "system: Input should be a valid list"),
        (base(system=[{"type": "text", "text": None}]), "system.0.text: Input should be a valid string"),
        (base(stream="yes"), "stream: Input should be a valid boolean"),
        (base(stop_sequences="END"), "stop_sequences: Input should be a valid list"),
        (base(tools=[{"name": "f"}]), "tools.0.input_schema: Field required"),
        (
            base(tools=[{"name": "f", "input_schema": []}]),
            "tools.0.input_schema: Input should be a valid dictionary",
        ),
        (base(tool_choice={"type": "tool"}), "tool_choice.name: Field required"),
        (
            base(thinking={"type": "enabled", "budget_tokens": "4"}),
            "thinking.budget_tokens: Input should be a valid integer",
        ),
        (
            base(output_config={"effort": "huge"}),
            "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
        ),
        (
            base(
                messages=[
                    {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}
                ]
            ),
            "messages.0.content.0.input: Input should be a valid dictionary",
        ),
        (
            base(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "text", "text": 1}],
                            }
                        ],
                    }
                ]
            ),
            "messages.0.content.0.content.0.text: Input should be a valid string",
        ),
        (
            base(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": 5}}
                        ],
                    }
                ]
            ),
            "messages.0.content.0.cache_control.ttl: Input should be '5m' or '1h'",
        ),
        (
            base(messages=[{"role": "user", "content": [{"type": "picture"}]}]),
            "messages.0.content.0: Input tag 'picture' found using 'type' does not match any of the "
            "expected tags: " + ", ".join(f"'{t}'" for t in v.BLOCK_TYPES),
        ),
        (
            base(messages=[{"role": "user", "content": [7]}]),
            "messages.0.content.0: Input should be a valid dictionary or object to extract fields from",
        ),
    ],
)
def test_wrong_types_are_400_naming_the_field_path(
    emu: Emulator, body: dict[str, Any], expected: str
) -> None:
    assert message_of(emu, "/v1/messages", body) == expected
    assert emu.bill() == []


def test_count_tokens_and_batches_validate_too(emu: Emulator) -> None:
    counted = {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    assert message_of(emu, "/v1/messages/count_tokens", counted) == (
        "messages.0.content.0.text: Input should be a valid string"
    )
    batch = {"requests": [{"custom_id": "a", "params": base(max_tokens="8")}]}
    assert (
        message_of(emu, "/v1/messages/batches", batch)
        == "requests.0.params.max_tokens: Input should be a valid integer"
    )
    assert message_of(emu, "/v1/messages/batches", {"requests": [{"params": base()}]}) == (
        "requests.0.custom_id: Field required"
    )
    assert emu.bill() == []


DEEP = b'{"model": "m", "max_tokens": 1, "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
DEEP_BUT_PARSABLE = (
    b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": '
    b'[{"type": "tool_use", "id": "t", "name": "f", "input": {"a": ' + b"[" * 500 + b"]" * 500 + b"}}]}]}"
)


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens", "/v1/messages/batches"])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (DEEP, "nesting deeper than"),
        (DEEP_BUT_PARSABLE, "nesting deeper than"),
        (
            b'{"model": "\\ud800", "max_tokens": 1, "messages": []}',
            "model: the string contains an unpaired surrogate",
        ),
        (b'{"\\udfff": 1}', "a key contains an unpaired surrogate"),
        (b'{"model": "\xff\xfe"}', "not valid JSON"),
        (b"[1, 2]", "Input should be a valid dictionary"),
        (b'"text"', "Input should be a valid dictionary"),
        (b"", "Input should be a valid dictionary"),
        (b'{"model": "m", "max_tokens": 1' + b"0" * 5000 + b', "messages": []}', "not valid JSON"),
        (b'{"model": 1e999, "max_tokens": 1, "messages": []}', "model: Input should be a valid string"),
        (b'{"model": "m", "max_tokens": NaN, "messages": []}', "not valid JSON"),
    ],
)
def test_hostile_bytes_are_400_never_500(emu: Emulator, path: str, raw: bytes, expected: str) -> None:
    message = message_of(emu, path, raw)
    if path.endswith("batches") and expected == "model: Input should be a valid string":
        expected = "requests: Field required"
    assert expected in message


def test_huge_integers_are_answered_not_a_crash(emu: Emulator) -> None:
    # The price table gives no output limit for MODEL, so a huge max_tokens is served (the reply is short).
    status, data = post(emu, "/v1/messages", json.dumps(base(max_tokens=10**200)).encode())
    assert status == 200 and data["usage"]["output_tokens"] < 60
    thinking = {"type": "enabled", "budget_tokens": 10**300}
    assert "budget_tokens" in message_of(emu, "/v1/messages", base(thinking=thinking))


# -- the models mirror the SDK: same field names, same literals ------------------------------


@pytest.mark.parametrize(
    ("model", "sdk"),
    [
        (v.MessagesParams, MessageCreateParamsStreaming),
        (v.CountTokensParams, MessageCountTokensParams),
        (v.TextBlock, TextBlockParam),
        (v.ToolUseBlock, ToolUseBlockParam),
        (v.ToolResultBlock, ToolResultBlockParam),
        (v.CustomTool, ToolParam),
        (v.CacheControl, CacheControlEphemeralParam),
        (v.ThinkingEnabled, ThinkingConfigEnabledParam),
        (v.ToolChoiceTool, ToolChoiceToolParam),
        (v.OutputConfig, OutputConfigParam),
    ],
)
def test_every_validated_field_is_an_sdk_field(model: type[Any], sdk: type[Any]) -> None:
    assert set(model.model_fields) <= set(get_type_hints(sdk))


def _literals(hint: Any) -> set[str]:
    out: set[str] = set()
    for arg in get_args(hint):
        out |= {arg} if isinstance(arg, str) else _literals(arg)
    return out


@pytest.mark.parametrize(
    ("model", "field", "sdk"),
    [
        (v.CacheControl, "ttl", CacheControlEphemeralParam),
        (v.OutputConfig, "effort", OutputConfigParam),
        (v.MessagesParams, "speed", MessageCreateParamsBase),
        (v.MessagesParams, "service_tier", MessageCreateParamsBase),
    ],
)
def test_literals_are_the_sdks(model: type[Any], field: str, sdk: type[Any]) -> None:
    ours = _literals(model.model_fields[field].annotation)
    assert ours == _literals(get_type_hints(sdk)[field])


def test_roles_are_the_sdks() -> None:
    assert (
        set(v.ROLES)
        == {"user", "assistant", "system"}
        == _literals(v.Message.model_fields["role"].annotation)
    )
    assert len(get_args(MessageParam)) == 3


# -- property: random JSON-ish bodies never get a 5xx; valid ones get a 200 -----------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "text", "tool_use", "tool_result", "image", "ephemeral", "1h", "5m", "user"])
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


def _valid_block() -> st.SearchStrategy[dict[str, Any]]:
    text = st.builds(lambda t: {"type": "text", "text": t}, st.text(min_size=1, max_size=20))
    marked = st.builds(
        lambda t: {"type": "text", "text": t, "cache_control": {"type": "ephemeral"}},
        st.text(min_size=1, max_size=20),
    )
    use = st.builds(
        lambda n: {"type": "tool_use", "id": f"toolu_{n}", "name": "f", "input": {"n": n}}, st.integers(0, 9)
    )
    result = st.builds(
        lambda n, c: {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": c},
        st.integers(0, 9),
        st.text(max_size=10) | st.just([{"type": "text", "text": "ok"}]),
    )
    return st.one_of(text, text, marked, use, result)


_valid_body = st.builds(
    lambda messages, system, tools: {
        "model": MODEL,
        "max_tokens": 16,
        "messages": messages,
        **({"system": system} if system else {}),
        **({"tools": tools} if tools else {}),
    },
    st.lists(
        st.builds(
            lambda role, content: {"role": role, "content": content},
            st.sampled_from(["user", "assistant"]),
            st.text(min_size=1, max_size=20) | st.lists(_valid_block(), min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=3,
    ).filter(lambda ms: sum(str(m).count("cache_control") for m in ms) <= 4),
    st.none() | st.text(min_size=1, max_size=30),
    st.none() | st.just([{"name": "f", "input_schema": {"type": "object"}}]),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    body = draw(_valid_body)
    paths = _paths(body)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        body = _replace(body, path, draw(_json))
        paths = _paths(body)
    raw = json.dumps(body, ensure_ascii=True).encode()
    tweak = draw(st.sampled_from(["none", "surrogate", "deep", "cut", "bytes"]))
    if tweak == "surrogate":
        raw = raw.replace(b'"', b'"\\ud83d', 1) if b'"' in raw else raw
    elif tweak == "deep":
        depth = draw(st.integers(100, 3000))
        raw = raw[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    elif tweak == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif tweak == "bytes":
        raw = raw + draw(st.binary(max_size=4))
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _mutated(),
    st.sampled_from(["/v1/messages", "/v1/messages/count_tokens", "/v1/messages/batches"]),
)
def test_random_bodies_never_get_a_5xx(raw: bytes, path: str) -> None:
    emu = Emulator()
    if path.endswith("batches"):
        raw = b'{"requests": [{"custom_id": "a", "params": ' + raw + b"}]}"
    answer = emu.handle(HttpRequest("POST", path, headers=KEY, body=raw))
    assert answer.status < 500
    data = json.loads(answer.body)
    if answer.status != 200:
        assert data["type"] == "error" and data["error"]["message"]


@settings(max_examples=150, deadline=None)
@given(_valid_body, st.sampled_from(["/v1/messages", "/v1/messages/count_tokens"]))
def test_valid_bodies_still_get_a_200(body: dict[str, Any], path: str) -> None:
    if path.endswith("count_tokens"):
        body = {k: val for k, val in body.items() if k != "max_tokens"}
    status, data = post(Emulator(), path, json.dumps(body).encode())
    assert status == 200, data


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "required": 5},
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "array", "minItems": "x"}}},
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "array", "minItems": 10**12}}},
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer", "minimum": "low"}}},
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "string", "minLength": 10**12}}},
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "number", "maximum": 1e308}}},
    ],
)
def test_a_hostile_tool_schema_gets_a_reply_not_a_crash(emu: Emulator, schema: dict[str, Any]) -> None:
    body = base(tools=[{"name": "f", "input_schema": schema}], tool_choice={"type": "any"}, max_tokens=200)
    status, data = post(emu, "/v1/messages", json.dumps(body).encode())
    assert status == 200, data
    assert data["content"][0]["type"] in ("tool_use", "text")


@pytest.mark.parametrize("kind", ["web_search_20250305", "tool_search_tool_regex_20251119", "mcp_toolset"])
def test_count_tokens_refuses_every_server_tool_the_docs_name(emu: Emulator, kind: str) -> None:
    body = {"model": MODEL, "messages": HI, "tools": [{"type": kind, "name": "t"}]}
    assert message_of(emu, "/v1/messages/count_tokens", body) == (
        "tools.0: server tools are not supported by count_tokens"
    )


@pytest.mark.parametrize("path", ["/v1/models", "/v1/messages/batches"])
@pytest.mark.parametrize("limit", ["0", "-1", "1001", "9" * 60, "ten"])
def test_list_limits_are_checked_on_every_list(emu: Emulator, path: str, limit: str) -> None:
    # Message Batches listings accepted any limit before (limit=-1 gave an empty page).
    answer = emu.handle(HttpRequest("GET", path, query=[("limit", limit)], headers=KEY))
    assert answer.status == 400
    assert json.loads(answer.body)["error"]["message"].startswith("limit: Input should be")


def test_through_the_sdk_and_a_real_socket(claude_emulator: Any, claude_emulator_client: Any) -> None:
    import anthropic
    import httpx2

    with pytest.raises(anthropic.BadRequestError) as err:
        claude_emulator_client.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]
        )
    assert err.value.status_code == 400
    assert err.value.body["error"]["message"] == "messages.0.content.0.text: Input should be a valid string"
    with httpx2.Client(base_url=claude_emulator.base_url, headers=KEY) as http:
        for raw in (DEEP, b'{"model": "\\udc00"}'):
            response = http.post("/v1/messages", content=raw)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["type"] == "invalid_request_error"
    assert claude_emulator.emulator.bill() == []
