"""The oracle (``cachewise.workloads.oracle``): plans knowing the calls to come; the emulator bills it."""

from __future__ import annotations

import random
from typing import Any

import anthropic
import httpx2
import pytest

from cachewise.emulator import Emulator, EmulatorTransport
from cachewise.workloads import Call, Oracle, Workload, play, run
from cachewise.workloads.suite import MODEL
from cachewise.workloads.text import words

SYSTEM = words(random.Random(1), 3000)  # about 5,500 emulator tokens: above Sonnet 4.6's minimum


def _ask(n: int, system: str = SYSTEM) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 8,
        "system": system,
        "messages": [{"role": "user", "content": f"question {n}"}],
    }


def _replay(calls: list[Call], *, blind_first: bool = False) -> list[tuple[dict[str, Any], Any]]:
    """(body as sent, usage) per call, on a fresh emulator under the oracle."""
    emulator = Emulator()
    client = anthropic.Anthropic(
        api_key="test",
        base_url="http://emulator.local",
        http_client=httpx2.Client(transport=EmulatorTransport(emulator)),
        max_retries=0,
    )
    oracle = Oracle(calls, emulator, blind_first=blind_first)
    sent: list[tuple[dict[str, Any], Any]] = []

    def send(body: dict[str, Any]) -> Any:
        marked = oracle.plan(body, emulator.now())
        reply = client.messages.create(**marked)
        sent.append((marked, reply.usage))
        return reply

    play(Workload.of("t", "t", calls), send, emulator)
    return sent


def _markers(body: dict[str, Any]) -> list[str]:
    system = body["system"]
    found = (
        [b["cache_control"].get("ttl", "5m") for b in system if "cache_control" in b]
        if isinstance(system, list)
        else []
    )
    for message in body["messages"]:
        if isinstance(message["content"], list):
            found += [b["cache_control"].get("ttl", "5m") for b in message["content"] if "cache_control" in b]
    return found


def test_a_prefix_read_twice_ten_minutes_apart_is_written_for_an_hour() -> None:
    (first, u1), (_, u2), (_, u3) = _replay([Call(0, _ask(0)), Call(600, _ask(1)), Call(1200, _ask(2))])
    assert _markers(first) == ["1h"]
    assert u1.cache_creation.ephemeral_1h_input_tokens > 5000
    assert (
        u2.cache_read_input_tokens
        == u3.cache_read_input_tokens
        == u1.cache_creation.ephemeral_1h_input_tokens
    )
    assert u2.cache_creation_input_tokens == 0


def test_the_learnable_bound_plans_a_familys_first_call_without_the_hour() -> None:
    # Blind on the first call, it cannot write the 1h entry the oracle writes there: a 5m write is
    # worth nothing (the next call is ten minutes on), so nothing is written; the second call writes
    # 1h for the two after it.
    other = words(random.Random(2), 3000)
    calls = [Call(600 * n, _ask(n)) for n in range(4)]
    calls = sorted([*calls, Call(1300, _ask(9, other))], key=lambda c: c.at)
    (first, u1), (second, u2), (_, u3), (fourth, u4), (_, u5) = _replay(calls, blind_first=True)
    assert _markers(first) == [] and u1.cache_creation_input_tokens == 0
    assert _markers(second) == ["1h"] and u2.cache_creation.ephemeral_1h_input_tokens > 5000
    assert (
        u3.cache_read_input_tokens
        == u5.cache_read_input_tokens
        == u2.cache_creation.ephemeral_1h_input_tokens
    )
    # Another family's first call (its only one) is blind too, and not worth a write.
    assert _markers(fourth) == [] and u4.cache_creation_input_tokens == 0


def test_one_read_an_hour_write_would_not_pay_for_is_not_written() -> None:
    # A 1h write costs 1.0x input more than no caching; one read saves 0.9x.
    (first, u1), (_, u2) = _replay([Call(0, _ask(0)), Call(600, _ask(1))])
    assert _markers(first) == []
    assert u1.cache_creation_input_tokens == u2.cache_read_input_tokens == 0


def test_reuse_within_five_minutes_takes_the_cheaper_write() -> None:
    (first, _), (_, u2) = _replay([Call(0, _ask(0)), Call(60, _ask(1))])
    assert _markers(first) == ["5m"]
    assert u2.cache_read_input_tokens > 5000


def test_nothing_is_written_that_no_later_call_reads() -> None:
    sent = _replay(
        [
            Call(0, _ask(0)),
            Call(2 * 3600, _ask(1)),
            Call(2 * 3600 + 1, _ask(2, system=words(random.Random(2), 3000))),
        ]
    )
    assert all(_markers(body) == [] for body, _ in sent)
    assert all(u.cache_creation_input_tokens == 0 and u.cache_read_input_tokens == 0 for _, u in sent)


def test_a_refresh_chain_keeps_a_five_minute_entry_alive_past_five_minutes() -> None:
    sent = _replay([Call(t, _ask(n)) for n, t in enumerate((0, 200, 400, 600))])
    assert _markers(sent[0][0]) == ["5m"]
    assert [u.cache_read_input_tokens > 5000 for _, u in sent] == [False, True, True, True]


def test_the_caller_s_markers_are_kept_and_the_ttl_order_holds() -> None:
    body = _ask(0)
    body["system"] = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    later = {**body, "messages": [{"role": "user", "content": "question 1"}]}
    (first, _), (_, u2) = _replay([Call(0, body), Call(900, later)])
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert _markers(first) == ["5m"]  # the caller's; a 1h marker may not follow it, a 5m one would lapse
    assert u2.cache_read_input_tokens == 0  # the caller's 5m entry lapsed; the oracle cannot change it


def test_the_oracle_refuses_a_call_it_did_not_plan_for() -> None:
    oracle = Oracle([Call(0, _ask(0))], Emulator())
    with pytest.raises(ValueError, match="call 0 is not the request it planned for"):
        oracle.plan(_ask(5), Oracle([], Emulator()).emulator.now())


def test_the_oracle_replays_as_a_strategy_and_beats_no_caching() -> None:
    workload = Workload.of("w", "w", [Call(t, _ask(n)) for n, t in enumerate((0, 100, 1500, 3000))])
    assert run(workload, "oracle").input_cost < run(workload, "none").input_cost
