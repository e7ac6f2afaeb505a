"""The official SDK, unchanged, against the emulator over a real loopback socket."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import pytest
from emulator_helpers import MODEL, text

from cachewise.emulator import EmulatorServer
from cachewise.pricing import price
from cachewise.usage import Usage

SYSTEM = [text(1997, mark=True)]  # 2000 tokens at the marker
HI = [{"role": "user", "content": "hi"}]


def test_sync_create_writes_then_reads(claude_emulator_client: anthropic.Anthropic) -> None:
    first = claude_emulator_client.messages.create(model=MODEL, max_tokens=64, system=SYSTEM, messages=HI)
    second = claude_emulator_client.messages.create(model=MODEL, max_tokens=64, system=SYSTEM, messages=HI)
    assert first.usage.cache_creation_input_tokens == 2000
    assert second.usage.cache_read_input_tokens == 2000
    assert second.usage.service_tier == "standard"
    assert second.usage.inference_geo == "global"
    assert second.usage.speed == "standard"
    assert first.content == second.content  # deterministic reply
    assert first.id != second.id
    assert first.stop_reason == "end_turn"
    assert 12 <= first.usage.output_tokens <= 59


async def test_async_create(claude_emulator_async_client: anthropic.AsyncAnthropic) -> None:
    client = claude_emulator_async_client
    first = await client.messages.create(model=MODEL, max_tokens=32, system=SYSTEM, messages=HI)
    second = await client.messages.create(model=MODEL, max_tokens=32, system=SYSTEM, messages=HI)
    assert (first.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens) == (2000, 2000)
    async with client.messages.stream(model=MODEL, max_tokens=32, system=SYSTEM, messages=HI) as stream:
        final = await stream.get_final_message()
    assert final.usage.cache_read_input_tokens == 2000


def test_stream_get_final_message(claude_emulator_client: anthropic.Anthropic) -> None:
    client = claude_emulator_client
    with client.messages.stream(model=MODEL, max_tokens=64, system=[text(1997, "1h")], messages=HI) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_creation is not None
    assert final.usage.cache_creation.ephemeral_1h_input_tokens == 2000  # the split from message_start
    assert final.usage.cache_creation_input_tokens == 2000
    assert final.usage.input_tokens == 11
    json_reply = client.messages.create(model=MODEL, max_tokens=64, system=[text(1997, "1h")], messages=HI)
    assert final.content[0].text == json_reply.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == json_reply.usage.output_tokens


def test_create_stream_true_event_sequence(claude_emulator_client: anthropic.Anthropic) -> None:
    events = list(
        claude_emulator_client.messages.create(
            model=MODEL, max_tokens=64, system=SYSTEM, messages=HI, stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    start = events[0].message.usage  # type: ignore[union-attr]
    assert start.cache_creation is not None and start.cache_creation.ephemeral_5m_input_tokens == 2000
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.usage.cache_creation_input_tokens == 2000  # cumulative, never the split
    raw = delta.usage.model_dump(exclude_none=True)
    assert "cache_creation" not in raw and "service_tier" not in raw and "speed" not in raw


def test_raw_sse_has_ping_and_event_names(claude_emulator: EmulatorServer) -> None:
    body = {"model": MODEL, "max_tokens": 8, "messages": HI, "stream": True}
    with httpx2.Client(base_url=claude_emulator.base_url) as http:
        response = http.post("/v1/messages", json=body, headers={"x-api-key": "k"})
    names = [
        line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event: ")
    ]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-1] == "message_stop"
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_")


def test_count_tokens_matches_billing(claude_emulator_client: anthropic.Anthropic) -> None:
    counted = claude_emulator_client.messages.count_tokens(model=MODEL, system=SYSTEM, messages=HI)
    message = claude_emulator_client.messages.create(model=MODEL, max_tokens=8, system=SYSTEM, messages=HI)
    u = message.usage
    assert counted.input_tokens == 2011 == u.input_tokens + (u.cache_creation_input_tokens or 0)


def test_batches_create_retrieve_results(
    claude_emulator: EmulatorServer, claude_emulator_client: anthropic.Anthropic
) -> None:
    client = claude_emulator_client
    requests: list[Any] = [
        {"custom_id": f"r{i}", "params": {"model": MODEL, "max_tokens": 16, "system": SYSTEM, "messages": HI}}
        for i in range(3)
    ]
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "ended"  # batch_delay 0: processed at creation
    again = client.messages.batches.retrieve(batch.id)
    assert again.request_counts.succeeded == 3
    assert again.results_url is not None and again.results_url.startswith(claude_emulator.base_url)
    lines = {line.custom_id: line for line in client.messages.batches.results(batch.id)}
    assert set(lines) == {"r0", "r1", "r2"}
    usages = [lines[f"r{i}"].result.message.usage for i in range(3)]  # type: ignore[union-attr]
    assert [u.service_tier for u in usages] == ["batch"] * 3
    # The same cache engine: the first writes, the next two read.
    assert [u.cache_creation_input_tokens for u in usages] == [2000, 0, 0]
    assert [u.cache_read_input_tokens for u in usages] == [0, 2000, 2000]
    bill = claude_emulator.emulator.bill()
    assert [row["endpoint"] for row in bill] == ["batch"] * 3
    # Batch pricing: half of $0.20/M read for 2000 tokens = $0.0002.
    assert Decimal(bill[1]["cost"]["cost_cache_read"]) == Decimal("0.0002")
    listed = client.messages.batches.list(limit=10)
    assert [b.id for b in listed.data] == [batch.id]


def test_batch_on_the_virtual_clock_and_cancel(
    claude_emulator: EmulatorServer, claude_emulator_client: anthropic.Anthropic
) -> None:
    emulator = claude_emulator.emulator
    emulator.batch_delay = 60
    try:
        request: Any = {"custom_id": "a", "params": {"model": MODEL, "max_tokens": 8, "messages": HI}}
        batch = claude_emulator_client.messages.batches.create(requests=[request])
        assert batch.processing_status == "in_progress"
        assert batch.request_counts.processing == 1
        with pytest.raises(anthropic.AnthropicError, match="results_url"):
            list(claude_emulator_client.messages.batches.results(batch.id))
        emulator.advance(60)
        done = claude_emulator_client.messages.batches.retrieve(batch.id)
        assert done.processing_status == "ended"
        assert done.ended_at is not None and (done.ended_at - done.created_at).total_seconds() == 60
        other = claude_emulator_client.messages.batches.create(requests=[request])
        canceling = claude_emulator_client.messages.batches.cancel(other.id)
        assert canceling.processing_status == "canceling"
        ended = claude_emulator_client.messages.batches.retrieve(other.id)
        assert (ended.processing_status, ended.request_counts.canceled) == ("ended", 1)
        [line] = list(claude_emulator_client.messages.batches.results(other.id))
        assert line.result.type == "canceled"
        listed = claude_emulator_client.messages.batches.list()
        assert [b.id for b in listed.data] == [other.id, batch.id]  # newest first
    finally:
        emulator.batch_delay = 0


def test_with_raw_response_headers(claude_emulator_client: anthropic.Anthropic) -> None:
    raw = claude_emulator_client.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=HI)
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["anthropic-organization-id"]
    assert raw.headers["anthropic-workspace-id"].startswith("wrkspc_")
    assert raw.parse().usage.input_tokens == 11


def test_models_list_and_retrieve(claude_emulator_client: anthropic.Anthropic) -> None:
    client = claude_emulator_client
    first = client.models.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    created = [m.created_at for m in client.models.list(limit=1000).data]
    assert created == sorted(created, reverse=True)  # newest first
    second = client.models.list(limit=2, after_id=first.data[-1].id)
    assert second.data[0].id not in {m.id for m in first.data}
    everything = {
        m.id: m for m in client.models.list(limit=1000, lifecycle=["active", "deprecated", "retired"]).data
    }
    default = {m.id for m in client.models.list(limit=1000).data}
    assert everything["claude-3-opus-20240229"].lifecycle == "retired"
    assert "claude-3-opus-20240229" not in default  # retired hidden by default
    assert everything["claude-sonnet-4-5-20250929"].lifecycle == "deprecated"
    assert client.models.retrieve("claude-haiku-4-5").id == "claude-haiku-4-5-20251001"  # alias
    info = client.models.retrieve(MODEL)
    assert (info.line, info.lifecycle, info.max_input_tokens) == ("sonnet", "active", 1_000_000)
    iterated = [m.id for m in client.models.list(limit=5)]  # auto-pagination through after_id
    assert len(iterated) == len(default)


def test_typed_errors(claude_emulator: EmulatorServer, claude_emulator_client: anthropic.Anthropic) -> None:
    client = claude_emulator_client
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="claude-nope-9", max_tokens=8, messages=HI)
    assert missing.value.body["error"] == {"type": "not_found_error", "message": "model: claude-nope-9"}  # type: ignore[index]
    faults = claude_emulator.emulator.faults
    faults.add("rate_limit", retry_after=7)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    assert limited.value.response.headers["retry-after"] == "7"
    faults.add("overloaded")
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    faults.add("api_error")
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    with pytest.raises(
        anthropic.BadRequestError,
        match=r"A maximum of 4 blocks with cache_control may be provided\. Found 5\.",
    ):
        client.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": [text(3, mark=True)] * 5}]
        )
    assert claude_emulator.emulator.bill() == []  # failed requests cost nothing


def test_authentication(claude_emulator: EmulatorServer) -> None:
    with httpx2.Client(base_url=claude_emulator.base_url) as http:
        response = http.post("/v1/messages", json={"model": MODEL, "max_tokens": 8, "messages": HI})
        assert response.status_code == 401
        assert response.json()["error"] == {
            "type": "authentication_error",
            "message": "x-api-key header is required",
        }
        assert response.json()["request_id"] == response.headers["request-id"]
        ok = http.post(
            "/v1/messages", json={"model": MODEL, "max_tokens": 8, "messages": HI}, headers={"x-api-key": "k"}
        )
        assert ok.status_code == 200
    emulator = claude_emulator.emulator
    emulator.strict_keys, emulator.keys = True, {"good": "wrkspc_good"}
    try:
        with (
            anthropic.Anthropic(api_key="bad", base_url=claude_emulator.base_url, max_retries=0) as client,
            pytest.raises(anthropic.AuthenticationError),
        ):
            client.messages.create(model=MODEL, max_tokens=8, messages=HI)
        with anthropic.Anthropic(api_key="good", base_url=claude_emulator.base_url, max_retries=0) as client:
            raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=HI)
            assert raw.headers["anthropic-workspace-id"] == "wrkspc_good"  # sent as Authorization: Bearer
    finally:
        emulator.strict_keys, emulator.keys = False, {}


def test_malformed_bodies(claude_emulator: EmulatorServer) -> None:
    headers = {"x-api-key": "k"}
    with httpx2.Client(base_url=claude_emulator.base_url, headers=headers) as http:
        for missing in ("model", "max_tokens", "messages"):
            body: dict[str, Any] = {"model": MODEL, "max_tokens": 8, "messages": HI}
            del body[missing]
            response = http.post("/v1/messages", json=body)
            assert response.status_code == 400
            assert response.json()["error"] == {
                "type": "invalid_request_error",
                "message": f"{missing}: Field required",
            }
        broken = http.post("/v1/messages", content=b"{not json", headers={"content-type": "application/json"})
        assert broken.status_code == 400 and broken.json()["type"] == "error"
        huge = http.post("/v1/messages", content=b" " * (32 * 1024 * 1024 + 1))
        assert huge.status_code == 413
        assert huge.json()["error"]["type"] == "request_too_large"
        assert http.get("/v1/nothing").status_code == 404


def test_bill_equals_sum_of_usages_priced(
    claude_emulator: EmulatorServer, claude_emulator_client: anthropic.Anthropic
) -> None:
    emulator = claude_emulator.emulator
    client = claude_emulator_client
    usages: list[tuple[Usage, bool]] = []
    for system in (SYSTEM, SYSTEM, [text(1997, "1h")], [text(1997, "1h"), text(500, "5m")]):
        message = client.messages.create(model=MODEL, max_tokens=32, system=system, messages=HI)
        usages.append((Usage.from_api(message.usage), False))
        emulator.advance(30)
    with client.messages.stream(model=MODEL, max_tokens=32, system=SYSTEM, messages=HI) as stream:
        usages.append((Usage.from_api(stream.get_final_message().usage), False))
    expected = sum(
        (
            price(emulator.book, u, MODEL, row_time).total
            for (u, _), row_time in zip(usages, [r.time for r in emulator.billing.rows()], strict=True)
        ),
        Decimal(0),
    )
    assert emulator.bill_total() == expected
    with httpx2.Client(base_url=claude_emulator.base_url) as http:
        bill = http.get("/_emulator/bill").json()
    assert Decimal(bill["total"]) == expected
    assert sum(Decimal(r["cost_total"]) for r in bill["rows"]) == expected
    assert [r["endpoint"] for r in bill["rows"]] == ["messages"] * 4 + ["stream"]
    # By hand for the first row: 2000 x $2.50/M + 11 x $2/M + output x $10/M.
    first = bill["rows"][0]
    out = first["usage"]["output_tokens"]
    assert Decimal(first["cost_total"]) == (Decimal(2000) * Decimal("2.5") + 11 * 2 + out * 10) / 1_000_000
