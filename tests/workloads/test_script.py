"""The workload script and its driver: timing, replies handed back, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cachewise.workloads import Call, Script, Workload, play


class Clock:
    def __init__(self) -> None:
        self.start = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
        self.offset = timedelta()
        self.advances: list[float] = []

    def now(self) -> datetime:
        return self.start + self.offset

    def advance(self, seconds: float) -> datetime:
        self.advances.append(seconds)
        self.offset += timedelta(seconds=seconds)
        return self.now()


def _request(n: int) -> dict[str, Any]:
    return {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": f"q{n}"}]}


def test_the_clock_moves_to_each_call_never_back_and_to_the_end() -> None:
    def script() -> Script:
        yield Call(0.0, _request(0))
        yield Call(10.0, _request(1))
        yield Call(4.0, _request(2))  # earlier than the clock: sent at once, the clock stays
        yield Call(12.5, _request(3))
        return 40.0

    clock = Clock()
    seen: list[tuple[float, str]] = []

    def send(request: dict[str, Any]) -> None:
        seen.append(((clock.now() - clock.start).total_seconds(), request["messages"][0]["content"]))

    assert play(Workload("w", "timed", script), send, clock) == 4
    assert seen == [(0.0, "q0"), (10.0, "q1"), (10.0, "q2"), (12.5, "q3")]
    assert clock.advances == [10.0, 2.5, 27.5]


def test_workloads_in_a_row_keep_their_gaps() -> None:
    calls = [Call(0.0, _request(0)), Call(30.0, _request(1)), Call(20.0, _request(2))]
    fixed = Workload.of("fixed", "ends at its latest call", calls)
    clock = Clock()
    play(fixed, lambda request: None, clock)
    play(fixed, lambda request: None, clock)
    assert clock.offset == timedelta(seconds=60)


def test_the_script_is_sent_each_reply() -> None:
    def script() -> Script:
        history: list[dict[str, Any]] = [{"role": "user", "content": "hello"}]
        for turn in range(3):
            reply = yield Call(
                turn * 5.0, {"model": "claude-test", "max_tokens": 8, "messages": list(history)}
            )
            history += [{"role": "assistant", "content": reply}, {"role": "user", "content": f"next {turn}"}]
        return 15.0

    sent: list[dict[str, Any]] = []

    def send(request: dict[str, Any]) -> str:
        sent.append(request)
        return f"reply {len(sent)}"

    assert play(Workload("chat", "reads replies", script), send) == 3
    assert [m["content"] for m in sent[2]["messages"]] == ["hello", "reply 1", "next 0", "reply 2", "next 1"]


def test_limit_stops_after_that_many_calls_and_does_not_wait_for_the_end() -> None:
    fixed = Workload.of("fixed", "five calls", [Call(float(10 * n), _request(n)) for n in range(5)])
    clock = Clock()
    sent: list[dict[str, Any]] = []
    assert play(fixed, sent.append, clock, limit=2) == 2
    assert [r["messages"][0]["content"] for r in sent] == ["q0", "q1"]
    assert clock.offset == timedelta(seconds=10)


def test_an_empty_workload_sends_nothing() -> None:
    clock = Clock()
    assert play(Workload.of("empty", "no calls", []), lambda request: None, clock) == 0
    assert clock.advances == []


def test_without_a_clock_nothing_waits() -> None:
    fixed = Workload.of("fixed", "two calls", [Call(0.0, _request(0)), Call(3600.0, _request(1))])
    sent: list[dict[str, Any]] = []
    assert play(fixed, sent.append) == 2
    assert len(sent) == 2
