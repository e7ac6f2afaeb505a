"""Hypothesis throws arbitrary usage objects and SSE event sequences at the normaliser.

Properties: reading never raises; a usage is trusted exactly when every count it carries is a whole
number in range; an untrusted one keeps its raw text and is never priced; a priced record reads
$0 only when its usage counts zero tokens.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise import StreamUsage, Usage
from cachewise.ledger import CallRecord
from cachewise.usage import MAX_TOKEN_COUNT

AT = datetime(2026, 11, 20, tzinfo=UTC)
COUNT_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")

good_count = st.integers(min_value=0, max_value=MAX_TOKEN_COUNT // 4)
bad_count = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=MAX_TOKEN_COUNT + 1),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
)
anything = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def usages(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A usage dict and whether a correct normaliser must trust it."""
    data: dict[str, Any] = {}
    trusted = True
    for key in COUNT_KEYS:
        kind = draw(st.sampled_from(["good", "good", "good", "bad", "null", "absent"]))
        if kind == "good":
            data[key] = draw(good_count)
        elif kind == "bad":
            data[key] = draw(bad_count)
            trusted = False
        elif kind == "null":
            data[key] = None
            trusted = trusted and key not in ("input_tokens", "output_tokens")
        else:
            trusted = trusted and key not in ("input_tokens", "output_tokens")
    if draw(st.booleans()):
        data[draw(st.sampled_from(["service_tier", "speed", "extra_field"]))] = draw(anything)
        if not isinstance(data.get("service_tier", ""), str | None) or not isinstance(
            data.get("speed", ""), str | None
        ):
            trusted = False
    return data, trusted


@settings(max_examples=300, deadline=None)
@given(usages())
def test_reading_a_usage_never_raises_and_trusts_exactly_the_valid_ones(
    case: tuple[dict[str, Any], bool],
) -> None:
    data, trusted = case
    reading = Usage.read(data)
    assert reading.trusted is trusted, (data, reading.cost_error)
    if not trusted:
        assert reading.raw is not None and json.loads(reading.raw) == json.loads(json.dumps(data))
        assert reading.cost_error and reading.cost_error.startswith("usage")
    record = CallRecord.priced(usage=reading, model="claude-sonnet-4-6", started_at=AT, request_id="r")
    if trusted and record.cost is None:  # a pricing error (e.g. a drawn speed 'fast'), not a usage one
        assert record.cost_error is not None and not record.cost_error.startswith("usage")
    elif trusted:
        assert record.cost is not None
        if record.cost.cost_total == 0:
            assert reading.usage.prompt_tokens + reading.usage.output_tokens == 0
    else:
        assert record.cost is None and record.cost_error == reading.cost_error
        assert record.raw_usage == reading.raw


@settings(max_examples=200, deadline=None)
@given(anything)
def test_any_json_value_as_usage_is_read_without_raising(value: Any) -> None:
    reading = Usage.read(value)
    if not reading.trusted:
        assert reading.raw is not None


event = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("message_start"), "message": st.fixed_dictionaries({"usage": anything})}
    ),
    st.fixed_dictionaries({"type": st.just("message_delta"), "usage": anything}),
    st.fixed_dictionaries({"type": st.sampled_from(["ping", "message_stop", "content_block_delta"])}),
    anything,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(event, max_size=6))
def test_any_event_sequence_is_followed_without_raising(events: list[Any]) -> None:
    stream = StreamUsage()
    for item in events:
        stream.feed(item)
    reading = stream.reading
    if not reading.trusted:
        assert reading.raw is not None
