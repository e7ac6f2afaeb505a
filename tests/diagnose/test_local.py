"""The local prefix diff on hand-made requests: order of the reasons, hashes, positions, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cachewise.diagnose import REASONS, Seen, diagnose
from cachewise.prompt import Prompt
from cachewise.usage import Usage

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
LONG = "word " * 3000


def _seen(system: str = LONG, *, at: datetime = T0, marked: bool = True, model: str = "m") -> Seen:
    block: dict[str, Any] = {"type": "text", "text": system}
    if marked:
        block["cache_control"] = {"type": "ephemeral"}
    body = {"model": model, "system": [block], "messages": [{"role": "user", "content": "hi"}]}
    return Seen.of(Prompt(body), at)


def _done(seen: Seen, written: int, *, after: float = 1.0) -> Seen:
    seen.finished_at = seen.started_at + timedelta(seconds=after)
    seen.written_tokens = written
    seen.total_tokens = written + 10
    return seen


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_every_reason_is_listed_once() -> None:
    assert len(set(REASONS)) == len(REASONS)


def test_prefix_changed_names_level_position_and_both_hashes() -> None:
    before = _done(_seen(), 3000)
    now = _seen(LONG + "!", at=_at(10))
    found = diagnose(now, before, Usage(ephemeral_5m_input_tokens=3001), at=_at(10), min_tokens=1024)
    assert found is not None and found.reason == "prefix_changed"
    assert (found.level, found.position, found.tokens) == ("system", 0, 3000)
    assert found.hash_before == before.hashes[0] and found.hash_now == now.hashes[0]
    assert found.hash_before != found.hash_now


def test_a_read_of_everything_is_no_miss_and_a_partial_read_is() -> None:
    before = _done(_seen(), 3000)
    assert (
        diagnose(_seen(at=_at(5)), before, Usage(cache_read_input_tokens=3000), at=_at(5), min_tokens=1)
        is None
    )
    partial = diagnose(_seen(at=_at(5)), before, Usage(cache_read_input_tokens=100), at=_at(5), min_tokens=1)
    assert partial is not None and partial.tokens == 2900


def test_expiry_is_measured_from_the_previous_start() -> None:
    before = _done(_seen(), 3000)
    live = diagnose(_seen(at=_at(299)), before, Usage(input_tokens=5), at=_at(299), min_tokens=1)
    gone = diagnose(_seen(at=_at(300)), before, Usage(input_tokens=5), at=_at(300), min_tokens=1)
    assert live is not None and live.reason == "unexplained"
    assert gone is not None and gone.reason == "expired" and gone.gap_seconds == 300


def test_unfinished_previous_is_concurrent_even_before_its_usage_is_known() -> None:
    before = _seen()  # no response yet
    found = diagnose(_seen(at=_at(1)), before, Usage(ephemeral_5m_input_tokens=3000), at=_at(1), min_tokens=1)
    assert found is not None and (found.reason, found.tokens) == ("concurrent", 3000)


def test_the_cold_start_the_unmarked_and_the_model_change() -> None:
    assert diagnose(_seen(), None, Usage(input_tokens=5), at=T0, min_tokens=1).reason == "no_previous"  # type: ignore[union-attr]
    unmarked = _done(_seen(marked=False), 0)
    found = diagnose(_seen(at=_at(5)), unmarked, Usage(input_tokens=5), at=_at(5), min_tokens=1)
    assert found is not None and found.reason == "not_written"
    other = diagnose(_seen(at=_at(5), model="n"), _done(_seen(), 3000), Usage(), at=_at(5), min_tokens=1)
    assert other is not None and (other.reason, other.tokens) == ("model_changed", 3000)


def test_below_minimum_uses_the_models_minimum() -> None:
    before = _done(_seen(), 0)
    found = diagnose(_seen(at=_at(5)), before, Usage(input_tokens=3010), at=_at(5), min_tokens=4096)
    assert found is not None and found.reason == "below_minimum"
