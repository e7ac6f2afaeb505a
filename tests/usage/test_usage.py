"""Usage normalisation from API JSON, SDK objects and stream events."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from anthropic.types import Usage as SDKUsage
from hypothesis import given

from cachewise import PriceBook, StreamUsage, Usage, UsageError
from cachewise.usage import MAX_TOKEN_COUNT
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
        ({"input_tokens": -1, "output_tokens": 1}, "input_tokens"),
        ({"input_tokens": "12", "output_tokens": 1}, "input_tokens"),
        ({"input_tokens": 1, "output_tokens": 1.5}, "output_tokens"),
        ({"input_tokens": 1, "output_tokens": True}, "output_tokens"),
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


def test_read_never_raises_and_names_every_problem() -> None:
    reading = Usage.read({"input_tokens": -5, "output_tokens": "7", "cache_read_input_tokens": 4})
    assert not reading.trusted
    assert reading.cost_error == (
        "usage.input_tokens is -5: a token count must be a non-negative integer; "
        'usage.output_tokens is "7": a token count must be a non-negative integer'
    )
    assert reading.usage == Usage(cache_read_input_tokens=4)  # valid counts kept, bad ones read as 0
    assert json.loads(reading.raw or "") == {
        "input_tokens": -5,
        "output_tokens": "7",
        "cache_read_input_tokens": 4,
    }


def test_a_trusted_reading_keeps_no_raw_copy() -> None:
    reading = Usage.read({"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": None})
    assert reading.trusted and reading.raw is None and reading.cost_error is None
    assert reading.usage == Usage(input_tokens=5, output_tokens=7)


@pytest.mark.parametrize("value", [MAX_TOKEN_COUNT + 1, 2**63, 10**40])
def test_absurdly_large_counts_are_untrusted(value: int) -> None:
    reading = Usage.read({"input_tokens": 1, "output_tokens": value})
    assert reading.problem is not None and reading.problem.field == "output_tokens"
    assert f"above {MAX_TOKEN_COUNT:,}" in str(reading.problem)
    assert Usage.read({"input_tokens": 1, "output_tokens": MAX_TOKEN_COUNT}).trusted


def test_the_bound_stays_above_every_context_window_with_margin() -> None:
    largest = max(m.context_window or 0 for m in PriceBook.default().models())
    assert largest > 0
    assert 1000 * largest <= MAX_TOKEN_COUNT
    assert MAX_TOKEN_COUNT < 2**63


def test_non_string_tier_is_untrusted() -> None:
    reading = Usage.read({"input_tokens": 1, "output_tokens": 1, "service_tier": 3})
    assert reading.cost_error == "usage.service_tier is 3: expected a string"


def test_stream_feed_never_raises_on_bad_shapes() -> None:
    stream = StreamUsage()
    stream.feed({"type": "message_start", "message": {"id": "m", "model": "x", "usage": "oops"}})
    stream.feed({"type": "message_delta", "usage": {"output_tokens": 2}})
    stream.feed({"type": "message_stop"})
    reading = stream.reading
    assert not reading.trusted
    assert 'usage is "oops": expected an object' in (reading.cost_error or "")
    with pytest.raises(UsageError):
        _ = stream.usage


def test_compaction_iterations_are_added_and_noted() -> None:
    payload = {
        "input_tokens": 100,
        "output_tokens": 50,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 0,
        "iterations": [
            {
                "type": "compaction",
                "input_tokens": 2000,
                "output_tokens": 300,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            },
            {
                "type": "message",
                "input_tokens": 100,
                "output_tokens": 50,
                "cache_read_input_tokens": 1000,
                "cache_creation_input_tokens": 0,
            },
        ],
    }
    reading = Usage.read(payload)
    assert reading.trusted
    usage = reading.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (2100, 350, 1000)
    assert usage.notes and "1 compaction iteration(s), 2300 tokens" in usage.notes[0]
    assert json.loads(reading.raw or "")["iterations"][0]["type"] == "compaction"


def test_bad_iteration_counts_are_untrusted() -> None:
    reading = Usage.read(
        {"input_tokens": 1, "output_tokens": 1, "iterations": [{"type": "compaction", "input_tokens": -1}]}
    )
    assert "usage.iterations[0].input_tokens is -1" in (reading.cost_error or "")


def test_a_billed_reply_needs_its_usage_and_both_required_counts() -> None:
    assert Usage.read(None).cost_error == "usage is missing: a billed reply must report its usage"
    missing = Usage.read({"output_tokens": 1})
    assert missing.problem is not None and missing.problem.field == "input_tokens"
    assert missing.problem.value == "missing"
    null = Usage.read({"input_tokens": 1, "output_tokens": None})
    assert null.cost_error == "usage.output_tokens is null: a billed reply must report this count"
    # outside a billed reply (the planner, tests) a partial usage reads missing counts as 0
    assert Usage.from_api({"input_tokens": 2600}) == Usage(input_tokens=2600)
    assert Usage.from_api(None) == Usage()
