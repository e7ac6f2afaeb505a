"""The SSE tap's fast paths read a stream as parsing every event does; a failing tap never stops a stream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cachewise.failopen import raising
from cachewise.integrations.sse import SSETap
from cachewise.integrations.tracker import CallTracker
from cachewise.usage import StreamUsage

MODEL = "claude-sonnet-4-6"


def _events(stop: bool) -> list[dict[str, Any]]:
    usage = {"input_tokens": 7, "output_tokens": 1, "cache_read_input_tokens": 900}
    out: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": MODEL, "usage": usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
    ]
    return [*out, {"type": "message_stop"}] if stop else out


def _compact(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))  # the API's own spelling


@pytest.mark.parametrize("stop", [True, False])
@pytest.mark.parametrize("spell", [_compact, json.dumps])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_the_tap_reads_a_stream_as_feeding_every_parsed_event_does(
    stop: bool, spell: Any, newline: str
) -> None:
    events = _events(stop)
    text = "".join(f"event: {e['type']}\ndata: {spell(e)}\n\n" for e in events).replace("\n", newline)
    tap = SSETap(0.0)
    for line in text.encode().split(b"\n\n"):  # one event a chunk, as the proxy reads the emulator
        tap.feed(line + b"\n\n" if line else b"")
    reference = StreamUsage()
    for event in events:
        reference.feed(event)
    assert tap.events == len(events)
    assert tap.stream.complete is reference.complete is stop
    assert tap.stream.reading == reference.reading
    assert (tap.stream.message_id, tap.stream.model) == (reference.message_id, reference.model)


def test_a_stop_event_with_more_in_it_is_parsed() -> None:
    tap = SSETap(0.0)
    tap.feed(b'event: message_stop\ndata: {"type":"message_stop","x":1}\n\n')
    assert tap.events == 1 and tap.stream.complete
    tap = SSETap(0.0)
    tap.feed(b'event: message_stop\ndata: {"type":"message_stop"}x\n\n')  # not JSON: not an event
    assert tap.events == 0 and not tap.stream.complete


class _Broken:
    def feed(self, chunk: bytes) -> None:
        raise RuntimeError("tap failed")


def test_a_failing_tap_is_swallowed_outside_tests_and_raised_under_them() -> None:
    tracker = CallTracker(ledger=None)
    recorder = tracker.tap(tracker.prepare({"model": MODEL, "messages": []}), 200, {})
    recorder.tap = _Broken()  # type: ignore[assignment]
    with raising(False):
        recorder.feed(b"data: {}\n\n")  # the stream goes on
    with raising(True), pytest.raises(RuntimeError, match="tap failed"):
        recorder.feed(b"data: {}\n\n")
