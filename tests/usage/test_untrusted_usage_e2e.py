"""Usage that cannot be trusted, end to end through ``cachewise.wrap`` and the official SDK.

A ``httpx2.MockTransport`` plays the API and answers 200 with a bad ``usage`` (JSON reply,
SSE stream, batch result line). Every billed response must be a row; an untrusted usage is
kept raw with a ``cost_error`` naming the field and the value: unpriced, never $0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

import cachewise
from cachewise.ledger import CallRecord, Ledger
from cachewise.planner import Plan
from cachewise.usage import MAX_TOKEN_COUNT
from cachewise.wrap import tracker_of

MODEL = "claude-sonnet-4-6"
GOOD = {
    "input_tokens": 12,
    "output_tokens": 3,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}
MISSING = object()

# (label, usage as the reply carries it, text the cost_error must contain)
BAD_USAGES: list[tuple[str, Any, str]] = [
    ("absent", MISSING, "usage is missing"),
    ("null", None, "usage is missing"),
    ("null-counts", {"input_tokens": None, "output_tokens": None}, "usage.input_tokens is null"),
    (
        "negative",
        {**GOOD, "input_tokens": -5},
        "usage.input_tokens is -5: a token count must be a non-negative",
    ),
    ("string", {**GOOD, "output_tokens": "12"}, 'usage.output_tokens is "12"'),
    ("float", {**GOOD, "cache_read_input_tokens": 1.5}, "usage.cache_read_input_tokens is 1.5"),
    ("list", {**GOOD, "input_tokens": [1]}, "usage.input_tokens is [1]"),
    (
        "absurd",
        {**GOOD, "output_tokens": MAX_TOKEN_COUNT + 1},
        f"usage.output_tokens is {MAX_TOKEN_COUNT + 1}",
    ),
    ("huge", {**GOOD, "input_tokens": 2**70}, f"usage.input_tokens is {2**70}"),
    ("split", {**GOOD, "cache_creation": {"ephemeral_1h_input_tokens": -1}}, "cache_creation.ephemeral_1h"),
    ("not-an-object", [1, 2], "usage is [1, 2]: expected an object"),
]


def _message(usage: Any, ident: str = "msg_1") -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    if usage is not MISSING:
        body["usage"] = usage
    return body


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def _client(handler: Callable[[httpx2.Request], httpx2.Response]) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url="http://api.test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


def _wrapped(client: anthropic.Anthropic, ledger: Ledger, seen: list[CallRecord]) -> anthropic.Anthropic:
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False)
    tracker_of(wrapped).on_record = seen.append
    return wrapped


def _assert_unpriced(rows: list[CallRecord], seen: list[CallRecord], text: str, raw: Any) -> None:
    (row,) = rows
    assert row.cost is None, "an untrusted usage must never be priced (not even as $0)"
    assert row.cost_error is not None and text in row.cost_error
    (record,) = seen
    assert record.raw_usage is not None
    if raw is not MISSING:
        assert json.loads(record.raw_usage) == raw


@pytest.mark.parametrize(("label", "usage", "text"), BAD_USAGES, ids=[b[0] for b in BAD_USAGES])
def test_json_reply_with_untrusted_usage_is_a_row_without_a_price(
    ledger: Ledger, label: str, usage: Any, text: str
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=_message(usage), headers={"request-id": f"req_{label}"})

    seen: list[CallRecord] = []
    with _client(handler) as client:
        wrapped = _wrapped(client, ledger, seen)
        reply = wrapped.with_raw_response.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.status_code == 200  # the caller's response is untouched
    ledger.flush()
    rows = ledger.calls()
    _assert_unpriced(rows, seen, text, None if usage is MISSING else usage)
    assert rows[0].request_id == f"req_{label}"
    assert rows[0].status == "ok"


def test_good_usage_is_still_priced_and_keeps_no_raw_copy(ledger: Ledger) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=_message(GOOD), headers={"request-id": "req_good"})

    seen: list[CallRecord] = []
    with _client(handler) as client:
        _wrapped(client, ledger, seen).messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    ledger.flush()
    (row,) = ledger.calls()
    assert row.cost is not None and row.cost.cost_total > 0
    assert row.cost_error is None
    assert seen[0].raw_usage is None


STREAM_CASES: list[tuple[str, Any, Any, str]] = [
    ("start-negative", {**GOOD, "input_tokens": -5}, {"output_tokens": 3}, "usage.input_tokens is -5"),
    ("delta-string", GOOD, {"output_tokens": "7"}, 'usage.output_tokens is "7"'),
    ("delta-absurd", GOOD, {"output_tokens": 10**12}, "usage.output_tokens is 1000000000000"),
    ("start-null", None, {"output_tokens": 3}, "usage.input_tokens is missing"),
    ("delta-list", GOOD, [3], "usage is [3]: expected an object"),
]


@pytest.mark.parametrize(("label", "start", "delta", "text"), STREAM_CASES, ids=[c[0] for c in STREAM_CASES])
def test_sse_stream_with_untrusted_usage_is_a_row_without_a_price(
    ledger: Ledger, label: str, start: Any, delta: Any, text: str
) -> None:
    message = {**_message(start), "content": []}
    events = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": delta,
        },
        {"type": "message_stop"},
    ]

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            content=_sse(events),
            headers={"request-id": f"req_{label}", "content-type": "text/event-stream"},
        )

    seen: list[CallRecord] = []
    with _client(handler) as client:
        wrapped = _wrapped(client, ledger, seen)
        chunks = list(
            wrapped.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        assert chunks[-1].type == "message_stop"  # the caller's stream is untouched
    ledger.flush()
    rows = ledger.calls()
    _assert_unpriced(rows, seen, text, MISSING)
    assert rows[0].endpoint == "stream"
    raw = json.loads(seen[0].raw_usage or "")
    assert raw == {"message_start": start, "message_delta": delta}


def test_batch_result_lines_with_untrusted_usage_are_rows_without_a_price(ledger: Ledger) -> None:
    batch = {
        "id": "msgbatch_1",
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {"processing": 0, "succeeded": 3, "errored": 0, "canceled": 0, "expired": 0},
        "created_at": "2026-11-20T10:00:00Z",
        "ended_at": "2026-11-20T10:05:00Z",
        "expires_at": "2026-11-21T10:00:00Z",
        "cancel_initiated_at": None,
        "archived_at": None,
        "results_url": "http://api.test/v1/messages/batches/msgbatch_1/results",
    }
    usages = {"ok": {**GOOD, "service_tier": "batch"}, "neg": {**GOOD, "output_tokens": -1}, "gone": MISSING}
    lines = b"".join(
        json.dumps(
            {"custom_id": key, "result": {"type": "succeeded", "message": _message(usage, f"msg_{key}")}}
        ).encode()
        + b"\n"
        for key, usage in usages.items()
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/results"):
            return httpx2.Response(200, content=lines, headers={"content-type": "application/binary"})
        return httpx2.Response(200, json=batch)

    seen: list[CallRecord] = []
    with _client(handler) as client:
        results = list(_wrapped(client, ledger, seen).messages.batches.results("msgbatch_1"))
        assert [r.custom_id for r in results] == ["ok", "neg", "gone"]
    ledger.flush()
    rows = {r.custom_id: r for r in ledger.calls()}
    assert set(rows) == {"ok", "neg", "gone"}
    assert rows["ok"].cost is not None and rows["ok"].cost.cost_total > 0
    assert rows["neg"].cost is None and "usage.output_tokens is -1" in (rows["neg"].cost_error or "")
    assert rows["gone"].cost is None and "usage is missing" in (rows["gone"].cost_error or "")
    raw = {r.custom_id: r.raw_usage for r in seen}
    assert raw["ok"] is None
    assert json.loads(raw["neg"] or "") == usages["neg"]


def test_planner_does_not_learn_from_untrusted_usage(ledger: Ledger) -> None:
    observed: list[object] = []

    class Recorder:
        def plan(self, request: dict[str, Any], *, record: bool = True) -> Any:
            return Plan(request=request, model=str(request["model"]), planned_at=datetime.now(UTC))

        def observe(self, plan: Any, usage: Any, at: Any) -> None:
            observed.append(usage)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=_message({**GOOD, "input_tokens": -3}), headers={"request-id": "r"})

    with _client(handler) as client:
        wrapped = cachewise.wrap(client, ledger=ledger, planner=Recorder())
        wrapped.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    ledger.flush()
    assert ledger.calls()[0].cost_error
    assert observed == []


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]"], ids=["empty", "not json", "a list"])
def test_a_200_reply_that_is_not_a_message_is_an_unpriced_row_not_a_free_error(
    ledger: Ledger, body: bytes
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"request-id": "req_body"})

    seen: list[CallRecord] = []
    with _client(handler) as client:
        reply = _wrapped(client, ledger, seen).with_raw_response.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.status_code == 200
    ledger.flush()
    (row,) = ledger.calls()
    assert (row.request_id, row.model, row.status) == ("req_body", MODEL, "ok")
    assert row.cost is None and "usage is missing" in (row.cost_error or "")
