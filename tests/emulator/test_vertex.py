"""The emulator's Vertex AI mode: rawPredict, streamRawPredict and count-tokens."""

from __future__ import annotations

import json
from decimal import Decimal

from cachewise.emulator import Emulator, HttpRequest

BASE = "/v1/projects/p/locations/{location}/publishers/anthropic/models/{model}:{op}"
MODEL = "claude-haiku-4-5@20251001"


def _haiku(usage: dict[str, int]) -> Decimal:
    """Haiku 4.5 at its published global rates: $1 in, $5 out per million tokens (no cache here)."""
    return (Decimal(usage["input_tokens"]) + 5 * Decimal(usage["output_tokens"])) / 1_000_000


def _post(emu: Emulator, path: str, body: dict[str, object]) -> tuple[int, dict[str, str], bytes]:
    data = {"anthropic_version": "vertex-2023-10-16", **body}
    request = HttpRequest(
        "POST", path, headers={"authorization": "Bearer tok"}, body=json.dumps(data).encode()
    )
    answer = emu.handle(request)
    return answer.status, answer.headers, answer.body if answer.stream is None else b"".join(answer.stream)


MESSAGES = {"max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}


def test_raw_predict_regional_and_global() -> None:
    emu = Emulator()
    status, _, content = _post(emu, BASE.format(location="us-east5", model=MODEL, op="rawPredict"), MESSAGES)
    assert status == 200
    assert "cache_creation" not in json.loads(content)["usage"]
    _post(emu, BASE.format(location="global", model=MODEL, op="rawPredict"), MESSAGES)
    regional, plain = emu.bill()
    assert (regional["regional"], plain["regional"]) == (True, False)
    assert Decimal(plain["cost_total"]) == _haiku(plain["usage"])
    assert Decimal(regional["cost_total"]) == _haiku(regional["usage"]) * Decimal("1.1")


def test_stream_raw_predict_is_sse_without_the_ttl_split() -> None:
    emu = Emulator()
    path = BASE.format(location="us", model=MODEL, op="streamRawPredict")
    status, headers, content = _post(emu, path, {**MESSAGES, "stream": True})
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    start = json.loads(content.split(b"\n")[1][5:])
    assert start["type"] == "message_start"
    assert "cache_creation" not in start["message"]["usage"]
    # streamRawPredict without stream=true is refused
    status, _, _ = _post(emu, path, MESSAGES)
    assert status == 400


def test_count_tokens_and_bad_bodies() -> None:
    emu = Emulator()
    path = BASE.format(location="global", model="count-tokens", op="rawPredict")
    status, _, content = _post(emu, path, {"model": MODEL, "messages": MESSAGES["messages"]})
    assert status == 200
    assert json.loads(content)["input_tokens"] > 0
    status, _, content = _post(
        emu, BASE.format(location="global", model=MODEL, op="rawPredict"), {**MESSAGES, "model": MODEL}
    )
    assert status == 400
    assert "model" in content.decode()
    assert emu.bill() == []
