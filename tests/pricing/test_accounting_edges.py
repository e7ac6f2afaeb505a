"""Accounting edges: batch on Claude 3.x, fast mode after it ended, compaction iterations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

import cachewise
from cachewise import Modifiers, PriceBook, Usage, price
from cachewise.errors import ModifierNotAvailable
from cachewise.ledger import CallRecord
from cachewise.wrap import tracker_of

MTOK = 1_000_000
CLAUDE_3 = {
    "claude-3-haiku-20240307": ("2025-01-10", D("0.125"), D("0.625")),
    "claude-3-opus-20240229": ("2025-01-10", D("7.5"), D("37.5")),
    "claude-3-5-sonnet-20240620": ("2025-01-10", D("1.5"), D("7.5")),
    "claude-3-5-sonnet-20241022": ("2025-01-10", D("1.5"), D("7.5")),
    "claude-3-7-sonnet-20250219": ("2025-06-10", D("1.5"), D("7.5")),
}


@pytest.mark.parametrize("model", sorted(CLAUDE_3))
def test_batch_on_claude_3_models_is_half_price(model: str) -> None:
    day, batch_in, batch_out = CLAUDE_3[model]
    at = datetime.fromisoformat(day).replace(tzinfo=UTC)
    cost = price(
        PriceBook.default(), Usage(input_tokens=MTOK, output_tokens=MTOK), model, at, Modifiers(batch=True)
    )
    assert (cost.input, cost.output) == (batch_in, batch_out)
    assert cost.rates.batch and cost.rates.multiplier == D("0.5")


def test_a_batch_result_on_claude_3_is_a_priced_row() -> None:
    record = CallRecord.priced(
        usage=Usage(input_tokens=MTOK, service_tier="batch"),
        model="claude-3-haiku-20240307",
        started_at=datetime(2025, 3, 1, tzinfo=UTC),
        request_id="msgbatch_1:a",
        modifiers=Modifiers(batch=True),
    )
    assert record.cost_error is None
    assert record.cost is not None and record.cost.cost_input == D("0.125")
    assert record.endpoint == "batch"


OPUS_46 = "claude-opus-4-6"
AFTER_FAST = datetime(2026, 7, 1, 12, tzinfo=UTC)  # Opus 4.6 fast mode ended 2026-06-29
DURING_FAST = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _fast_record(at: datetime, usage_speed: str | None) -> CallRecord:
    return CallRecord.priced(
        usage=Usage(input_tokens=MTOK, output_tokens=MTOK, speed=usage_speed),
        model=OPUS_46,
        started_at=at,
        request_id="req_fast",
        modifiers=Modifiers(speed="fast"),
    )


def test_fast_request_after_fast_mode_ended_is_priced_standard() -> None:
    record = _fast_record(AFTER_FAST, None)
    assert record.cost_error is None
    assert record.cost is not None
    assert (record.cost.cost_input, record.cost.cost_output) == (D(5), D(25))
    assert record.speed == "standard"
    assert record.rates is not None and record.rates["fast"] is False


def test_fast_request_while_fast_mode_runs_is_priced_fast() -> None:
    record = _fast_record(DURING_FAST, None)
    assert record.cost is not None and record.cost.cost_input == D(30)
    assert record.speed == "fast"


def test_usage_that_says_fast_after_the_end_is_still_a_cost_error() -> None:
    record = _fast_record(AFTER_FAST, "fast")
    assert record.cost is None
    assert record.cost_error is not None and "fast mode is not priced" in record.cost_error
    with pytest.raises(ModifierNotAvailable):
        price(PriceBook.default(), Usage(input_tokens=1, speed="fast"), OPUS_46, AFTER_FAST)


def test_fast_request_on_a_model_that_never_had_fast_mode_stays_an_error() -> None:
    record = CallRecord.priced(
        usage=Usage(input_tokens=MTOK),
        model="claude-sonnet-4-6",
        started_at=AFTER_FAST,
        request_id="r",
        modifiers=Modifiers(speed="fast"),
    )
    assert record.cost is None and record.cost_error is not None


def test_fast_request_after_the_end_through_the_wrapped_sdk(tmp_path: Path) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        assert json.loads(request.content)["speed"] == "fast"
        body = {
            "id": "msg_f",
            "type": "message",
            "role": "assistant",
            "model": OPUS_46,
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": MTOK, "output_tokens": 10, "speed": None},
        }
        return httpx2.Response(200, json=body, headers={"request-id": "req_fast_e2e"})

    seen: list[CallRecord] = []
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    with anthropic.Anthropic(
        api_key="k", base_url="http://api.test", http_client=http, max_retries=0
    ) as client:
        wrapped = cachewise.wrap(
            client, ledger=tmp_path / "ledger.sqlite", planner=False, clock=lambda: AFTER_FAST
        )
        tracker_of(wrapped).on_record = seen.append
        wrapped.messages.create(
            model=OPUS_46, max_tokens=8, speed="fast", messages=[{"role": "user", "content": "hi"}]
        )
    (record,) = seen
    assert record.cost_error is None
    assert record.cost is not None and record.cost.cost_input == D(5)
    assert record.speed == "standard"


COMPACTED: dict[str, Any] = {
    "input_tokens": 1000,
    "output_tokens": 100,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
    "iterations": [
        {
            "type": "compaction",
            "input_tokens": 180_000,
            "output_tokens": 4_000,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
        {
            "type": "message",
            "input_tokens": 1000,
            "output_tokens": 100,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    ],
}


def test_compaction_iterations_are_billed_kept_and_flagged_on_the_record() -> None:
    record = CallRecord.priced(
        usage=Usage.read(COMPACTED),
        model="claude-sonnet-4-6",
        started_at=datetime(2026, 11, 20, tzinfo=UTC),
        request_id="req_compact",
    )
    assert record.cost is not None and record.cost_error is None
    # top-level 1,000 in / 100 out plus the compaction's 180,000 / 4,000, at $3 / $15 per MTok
    assert record.cost.cost_input == D(181_000) * 3 / MTOK
    assert record.cost.cost_output == D(4_100) * 15 / MTOK
    assert record.raw_usage is not None and json.loads(record.raw_usage) == COMPACTED
    assert record.rates is not None
    assert any("compaction iteration" in note for note in record.rates["uncertain"])


def test_advisor_iterations_are_flagged_not_added() -> None:
    usage = Usage.read(
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "iterations": [
                {
                    "type": "advisor_message",
                    "model": "claude-opus-4-8",
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "cache_read_input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                }
            ],
        }
    ).usage
    assert (usage.input_tokens, usage.output_tokens) == (10, 5)
    assert usage.notes and "advisor_message on claude-opus-4-8" in usage.notes[0]
