"""Usage normalisation from API JSON, SDK objects and stream events."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from anthropic.types import Usage as SDKUsage
from hypothesis import given

from cachewise import StreamUsage, Usage, UsageError
from tests.strategies import token_counts as counts


def test_from_api_json_with_ttl_split() -> None:
    usage = Usage.from_api(
        {
            "input_tokens": 10,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 50,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "output_tokens": 7,
            "service_tier": "standard",
            "inference_geo": "global",
        }
    )
    assert (usage.ephemeral_5m_input_tokens, usage.ephemeral_1h_input_tokens) == (100, 200)
    assert usage.cache_creation_input_tokens == 300
    assert usage.prompt_tokens == 360
    assert not usage.ttl_split_missing


def test_missing_split_counts_all_writes_as_5m_and_flags_it() -> None:
    usage = Usage.from_api({"input_tokens": 1, "cache_creation_input_tokens": 40, "output_tokens": 1})
    assert usage.ephemeral_5m_input_tokens == 40
    assert usage.ephemeral_1h_input_tokens == 0
    assert usage.ttl_split_missing


def test_split_short_of_total_counts_excess_as_5m() -> None:
    usage = Usage.from_api(
        {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 500,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 300},
        }
    )
    assert (usage.ephemeral_5m_input_tokens, usage.ephemeral_1h_input_tokens) == (200, 300)


def test_from_sdk_model() -> None:
    sdk = SDKUsage.model_validate(
        {
            "input_tokens": 3,
            "output_tokens": 4,
            "cache_read_input_tokens": 5,
            "cache_creation_input_tokens": 6,
            "cache_creation": {"ephemeral_5m_input_tokens": 6, "ephemeral_1h_input_tokens": 0},
            "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 0},
            "speed": "fast",
        }
    )
    usage = Usage.from_api(sdk)
    assert usage == Usage(
        input_tokens=3,
        output_tokens=4,
        cache_read_input_tokens=5,
        ephemeral_5m_input_tokens=6,
        web_search_requests=2,
        speed="fast",
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"input_tokens": "12"}, "input_tokens"),
        ({"output_tokens": 1.5}, "output_tokens"),
    ],
)
def test_bad_usage_names_the_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(UsageError, match=field) as info:
        Usage.from_api(payload)
    assert info.value.field == field


def test_stream_usage_is_replaced_never_added() -> None:
    stream = StreamUsage()
    stream.feed(
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "m",
                "usage": {
                    "input_tokens": 10,
                    "cache_read_input_tokens": 1000,
                    "cache_creation_input_tokens": 200,
                    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 200},
                    "output_tokens": 1,
                },
            },
        }
    )
    stream.feed({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}})
    stream.feed({"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 5}})
    stream.feed(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 9, "input_tokens": 10, "cache_read_input_tokens": 1000},
        }
    )
    assert not stream.complete
    stream.feed({"type": "message_stop"})
    usage = stream.usage
    assert stream.complete and stream.message_id == "msg_1"
    assert usage.output_tokens == 9  # cumulative, not 1 + 5 + 9
    assert usage.input_tokens == 10 and usage.cache_read_input_tokens == 1000
    assert usage.ephemeral_1h_input_tokens == 200  # the message_start split is kept


def test_cut_stream_keeps_what_was_seen() -> None:
    stream = StreamUsage()
    stream.feed(
        {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 7, "output_tokens": 1}}}
    )
    assert not stream.complete
    assert stream.usage.input_tokens == 7


@given(counts, counts, counts, counts, counts)
def test_round_trip_and_additivity(a: int, b: int, c: int, d: int, e: int) -> None:
    usage = Usage(
        input_tokens=a,
        cache_read_input_tokens=b,
        ephemeral_5m_input_tokens=c,
        ephemeral_1h_input_tokens=d,
        output_tokens=e,
    )
    assert Usage.from_api(usage.to_api()) == usage
    doubled = usage + usage
    assert doubled.prompt_tokens == 2 * usage.prompt_tokens
    assert doubled.code_execution_hours == D(0)
