"""Fuzz the wrapper's and the proxy's input paths (issue 10, "Must show"): every billed call is one row.

* SSE streams, generated and cut into arbitrary chunks, through the stream recorder the
  middleware, the transports and the proxy share: exactly one record per stream, with the usage
  the stream carried (replaced by each delta, never added), incomplete exactly when it did not end.
* Request bodies, generated (JSON of any shape, Messages-like bodies, raw bytes), through the
  proxy over a real socket: the caller gets the upstream's answer, never the proxy's own error;
  what the planner did not change goes upstream byte for byte; one row per billed call.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cachewise.failopen import raising
from cachewise.integrations.proxy import create_proxy_app
from cachewise.integrations.tracker import CallTracker
from cachewise.ledger import CallRecord, Ledger
from cachewise.planner import CachePlanner

from .conftest import API_KEY
from .test_proxy import serve

MODEL = "claude-sonnet-4-6"
counts = st.integers(min_value=0, max_value=2_000_000)


class Collected:
    """A record sink that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        self.records.append(record)


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, int], bool]:
    """A Messages event stream, the usage it ends with, and whether it is complete."""
    start = {
        "input_tokens": draw(counts),
        "output_tokens": draw(counts),
        "cache_read_input_tokens": draw(counts),
    }
    usage = dict(start, cache_creation_input_tokens=0)
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_fuzz",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "usage": usage,
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    final = dict(usage)
    for _ in range(draw(st.integers(0, 3))):
        events.append(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}
        )
        delta = {"output_tokens": draw(counts)}
        if draw(st.booleans()):
            delta["input_tokens"] = draw(counts)
        events.append({"type": "message_delta", "delta": {"stop_reason": None}, "usage": delta})
        final.update(delta)
    ending = draw(st.sampled_from(["stop", "error", "cut"]))
    if ending == "stop":
        events.append({"type": "message_stop"})
    elif ending == "error":
        events.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    return events, final, ending == "stop"


@settings(max_examples=150, deadline=None)
@given(stream=streams(), cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
def test_every_stream_is_one_record_with_the_usage_it_carried(
    stream: tuple[list[dict[str, Any]], dict[str, int], bool], cuts: list[int]
) -> None:
    events, final, complete = stream
    body = b"".join(_sse(e) for e in events)
    points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    chunks = [body[a:b] for a, b in itertools.pairwise(points)]
    sink = Collected()
    tracker = CallTracker(ledger=None, sinks=[sink])
    recorder = tracker.tap(
        tracker.unplanned({"model": MODEL, "stream": True}), 200, {"request-id": "req_fuzz"}
    )
    for chunk in chunks:
        recorder.feed(chunk)
    recorder.close()
    recorder.close()  # the stream ends once, however often it is told
    (record,) = sink.records
    assert record.request_id == "req_fuzz"
    assert record.incomplete is (not complete)
    assert (record.usage.input_tokens, record.usage.output_tokens, record.usage.cache_read_input_tokens) == (
        final["input_tokens"],
        final["output_tokens"],
        final["cache_read_input_tokens"],
    )
    if not complete and events[-1]["type"] == "error":
        assert record.error_type == "overloaded_error"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
blocks = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["text", "image", "tool_result", "bogus"]),
                "text": st.text(max_size=200),
            },
            optional={"cache_control": st.just({"type": "ephemeral"}) | json_values},
        ),
        max_size=4,
    ),
    json_values,
)
messages_bodies = st.fixed_dictionaries(
    {"model": st.sampled_from([MODEL, "claude-haiku-4-5", "claude-nope-1"]) | json_values},
    optional={
        "max_tokens": st.integers(-5, 100_000) | json_values,
        "system": blocks | st.text(min_size=3000, max_size=9000),
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant"]) | json_values, "content": blocks}
            ),
            max_size=4,
        )
        | json_values,
        "tools": st.lists(st.fixed_dictionaries({"name": st.text(max_size=10)}), max_size=3) | json_values,
        "stream": st.just(False),
    },
)
plannable = st.fixed_dictionaries(
    {
        "model": st.just(MODEL),
        "max_tokens": st.integers(1, 1000),
        "system": st.integers(200, 1000).map(lambda n: "Stable manual text. " * n),
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.just("user"), "content": blocks}), min_size=1, max_size=3
        ),
    }
)
request_bytes = st.one_of(
    plannable.map(lambda b: json.dumps(b).encode()),
    messages_bodies.map(lambda b: json.dumps(b).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
)


class Upstream:
    """Answers every Messages call with a billed message; remembers what it was sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        with self._lock:
            self.sent.append(request.read())
            number = len(self.sent)
        message = {
            "id": f"msg_{number}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 0},
        }
        return httpx2.Response(200, json=message, headers={"request-id": f"req_fuzz_{number}"})


@pytest.fixture
def proxied(ledger: Ledger) -> Iterator[tuple[str, Upstream]]:
    upstream = Upstream()
    tracker = CallTracker(ledger=ledger, planner=CachePlanner())  # no counter: offline bounds only
    app = create_proxy_app(tracker, upstream="http://api.invalid", transport=httpx2.MockTransport(upstream))
    with raising(False):  # what a user gets: internal failures are logged, the call goes on
        for base_url in serve(app):
            yield base_url, upstream


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=request_bytes)
def test_any_body_through_the_proxy_gets_the_upstreams_answer_and_one_row(
    content: bytes, proxied: tuple[str, Upstream], ledger: Ledger
) -> None:
    base_url, upstream = proxied
    before = len(upstream.sent)
    reply = httpx2.post(f"{base_url}/v1/messages", content=content, headers={"x-api-key": API_KEY})
    assert reply.status_code == 200, reply.text
    assert reply.json()["type"] == "message"
    (forwarded,) = upstream.sent[before:]
    ledger.flush()
    rows = {r.request_id: r for r in ledger.calls()}
    assert len(rows) == len(upstream.sent)  # rows == billed
    row = rows[f"req_fuzz_{len(upstream.sent)}"]
    assert row.status == "ok"
    if forwarded != content:  # only a plan changes the bytes, and then into valid JSON
        assert row.planned and row.breakpoints
        json.loads(forwarded)
        event("planned")
