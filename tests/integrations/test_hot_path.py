"""The proxy's hot path reads what it read before, faster: SSE events cut at once, JSON by orjson
with :mod:`json` behind it, a reply read once for the record and the envelope."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise.integrations._json import read_json
from cachewise.integrations.sse import SSETap
from cachewise.integrations.tracker import CallTracker, read_reply
from cachewise.ledger import CallRecord

MODEL = "claude-sonnet-4-6"


def _events(output_tokens: list[int], error: bool) -> list[dict[str, Any]]:
    usage = {"input_tokens": 7, "output_tokens": 1, "cache_read_input_tokens": 900}
    out: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": MODEL, "usage": usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    for n in output_tokens:
        out.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}})
        out.append({"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": n}})
    out.append({"type": "ping"})
    if error:
        out.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    else:
        out.append({"type": "message_stop"})
    return out


def _state(tap: SSETap) -> tuple[Any, ...]:
    s = tap.stream
    usage = s.reading.usage
    return (
        tap.events,
        tap.error_type,
        tap.first_token_at is not None,
        s.seen_start,
        s.complete,
        s.message_id,
        (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens),
    )


@settings(max_examples=150, deadline=None)
@given(
    output_tokens=st.lists(st.integers(0, 10**6), max_size=4),
    error=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=10),
)
def test_a_stream_cut_anywhere_reads_as_the_whole_stream_does(
    output_tokens: list[int], error: bool, newline: str, cuts: list[int]
) -> None:
    events = _events(output_tokens, error)
    text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    body = text.replace("\n", newline).encode()
    whole = SSETap(0.0)
    whole.feed(body)
    points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    pieces = SSETap(0.0)
    for a, b in itertools.pairwise(points):
        pieces.feed(body[a:b])
    assert _state(pieces) == _state(whole)
    assert whole.events == len(events)
    assert whole.error_type == ("overloaded_error" if error else None)
    assert whole.stream.complete is not error
    expected_output = output_tokens[-1] if output_tokens else 1
    assert whole.stream.reading.usage.output_tokens == expected_output


def test_an_unfinished_event_waits_for_the_rest() -> None:
    tap = SSETap(0.0)
    start = {"type": "message_start", "message": {"id": "m", "model": MODEL, "usage": {"input_tokens": 3}}}
    raw = f"event: message_start\ndata: {json.dumps(start)}\n\n".encode()
    tap.feed(raw[:-1])
    assert not tap.stream.seen_start
    tap.feed(raw[-1:])
    assert tap.stream.seen_start and tap.stream.reading.usage.input_tokens == 3


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1.5, "x", null, true]}',
        '{"n": NaN, "i": -Infinity}',  # json takes these, orjson does not
        '{"big": 123456789012345678901234567890}',  # beyond 64 bits: orjson reads a float
        '{"m": {"n": [-9223372036854775809, 18446744073709551616]}}',
        '{"t": 0.7, "u": 18446744073709551615, "f": 1e30}',
        '{"lone": "\\ud800"}',  # a lone surrogate
        '{"k": 1, "k": 2}',  # the last of a repeated key wins, as in json
        "[1e400, 0.1]",
    ],
)
def test_read_json_reads_what_json_reads(text: str) -> None:
    expected = json.loads(text)
    got = read_json(text.encode())
    assert json.dumps(got) == json.dumps(expected)
    assert repr(got) == repr(expected)  # an integer stays an integer
    assert read_json(text) == expected or json.dumps(read_json(text)) == json.dumps(expected)


def test_the_proxy_reads_a_body_with_a_big_integer_as_json_does() -> None:
    # What the planner then writes upstream is this value: a float here would change the user's body.
    body = b'{"model": "m", "metadata": {"n": 123456789012345678901234567890}, "temperature": 0.5}'
    assert read_reply(body) == {
        "model": "m",
        "metadata": {"n": 123456789012345678901234567890},
        "temperature": 0.5,
    }
    assert type(read_reply(body)["metadata"]["n"]) is int


def test_read_json_raises_what_json_raises() -> None:
    with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
        read_json(b"{not json")  # json's own error, not orjson's
    assert read_json('"\u00e9"'.encode("utf-16")) == "\u00e9"  # json reads UTF-16 bytes; so does this
    assert read_reply(b"") is None
    assert read_reply(b"{not json") is None
    assert read_reply(b"[" * 100_000) is None  # nested too deep


class _Sink:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize(
    "content",
    [
        b'{"id": "msg_1", "type": "message", "model": "claude-sonnet-4-6", '
        b'"usage": {"input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 2048}}',
        b'{"code": 200, "data": {"id": "msg_2", "type": "message", "model": "claude-sonnet-4-6", '
        b'"usage": {"input_tokens": 5, "output_tokens": 1}}}',
        b'{"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}',
        b"not json at all",
        b"",
    ],
)
def test_a_reply_read_by_the_caller_is_recorded_as_one_the_tracker_reads(content: bytes) -> None:
    rows: list[list[CallRecord]] = []
    for given_parsed in (False, True):
        sink = _Sink()
        tracker = CallTracker(ledger=None, sinks=[sink])
        prepared = tracker.unplanned({"model": MODEL, "max_tokens": 8, "messages": []})
        headers = {"request-id": "req_1"}
        if given_parsed:
            tracker.finish(prepared, 200, headers, content, parsed=read_reply(content))
        else:
            tracker.finish(prepared, 200, headers, content)
        rows.append(sink.records)
    plain, given_ = rows
    assert len(plain) == len(given_) == 1
    keep = ("usage", "status", "error_type", "model", "message_id", "request_id", "cost")
    assert [getattr(given_[0], k) for k in keep] == [getattr(plain[0], k) for k in keep]
