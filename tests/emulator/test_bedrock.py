"""The emulator's Bedrock InvokeModel mode: the translation, and event-stream frames botocore decodes."""

from __future__ import annotations

import base64
import json
import zlib
from decimal import Decimal

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from cachewise.emulator import Emulator, HttpRequest
from cachewise.emulator.bedrock import CONTENT_TYPE, encode_frame

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
AUTH = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/us-east-1/bedrock/aws4_request, Signature=x"


def _body(**extra: object) -> bytes:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 16, **extra}
    body.setdefault("messages", [{"role": "user", "content": "hello"}])
    return json.dumps(body).encode()


def _haiku(usage: dict[str, int]) -> Decimal:
    """Haiku 4.5 at its published global rates: $1 in, $5 out per million tokens (no cache here)."""
    return (Decimal(usage["input_tokens"]) + 5 * Decimal(usage["output_tokens"])) / 1_000_000


def _post(emu: Emulator, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    answer = emu.handle(HttpRequest("POST", path, headers={"authorization": AUTH}, body=body))
    content = answer.body if answer.stream is None else b"".join(answer.stream)
    return answer.status, answer.headers, content


def test_frames_decode_with_botocore() -> None:
    frame = encode_frame({":event-type": "chunk", ":message-type": "event"}, b'{"bytes":"e30="}')
    buffer = EventStreamBuffer()
    buffer.add_data(frame[:7])
    assert list(buffer) == []  # an incomplete frame waits for the rest
    buffer.add_data(frame[7:])
    (message,) = list(buffer)
    assert message.headers == {":event-type": "chunk", ":message-type": "event"}
    assert message.payload == b'{"bytes":"e30="}'
    broken = frame[:-5] + bytes([frame[-5] ^ 1]) + frame[-4:]
    corrupt = EventStreamBuffer()
    corrupt.add_data(broken)
    with pytest.raises(ChecksumMismatch):
        list(corrupt)
    assert int.from_bytes(frame[-4:], "big") == zlib.crc32(frame[:-4])


def test_invoke_answers_a_message_billed_at_the_regional_premium() -> None:
    emu = Emulator()
    status, headers, content = _post(emu, f"/model/{MODEL}/invoke", _body())
    assert status == 200
    message = json.loads(content)
    assert message["type"] == "message"
    assert "cache_creation" not in message["usage"]
    assert "service_tier" not in message["usage"]
    assert headers["x-amzn-requestid"] == headers["request-id"]
    (row,) = emu.bill()
    assert row["regional"] is True
    assert row["model"] == "claude-haiku-4-5-20251001"


def test_the_stream_is_event_stream_frames_of_the_messages_events() -> None:
    emu = Emulator()
    status, headers, content = _post(emu, f"/model/{MODEL}/invoke-with-response-stream", _body())
    assert status == 200
    assert headers["content-type"] == CONTENT_TYPE
    buffer = EventStreamBuffer()
    buffer.add_data(content)
    events = []
    for message in buffer:
        assert message.headers[":event-type"] == "chunk"
        events.append(json.loads(base64.b64decode(json.loads(message.payload)["bytes"])))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "cache_creation" not in events[0]["message"]["usage"]
    (row,) = emu.bill()
    assert row["endpoint"] == "stream"


def test_the_global_profile_has_no_premium_and_the_key_picks_the_workspace() -> None:
    emu = Emulator()
    _post(emu, f"/model/global.{MODEL[3:]}/invoke", _body())
    _post(emu, f"/model/{MODEL}/invoke", _body())
    first, second = emu.bill()
    assert first["regional"] is False
    assert Decimal(first["cost_total"]) == _haiku(first["usage"])
    assert Decimal(second["cost_total"]) == _haiku(second["usage"]) * Decimal("1.1")
    assert first["workspace"] == second["workspace"]


def test_a_body_without_anthropic_version_or_with_model_errors() -> None:
    emu = Emulator()
    status, _, content = _post(emu, f"/model/{MODEL}/invoke", json.dumps({"max_tokens": 1}).encode())
    assert status == 400
    assert "anthropic_version" in content.decode()
    status, _, _ = _post(emu, f"/model/{MODEL}/invoke", b"[1]")
    assert status == 400
    assert emu.bill() == []
