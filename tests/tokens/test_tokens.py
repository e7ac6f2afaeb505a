"""TokenCounter: the three ways to reach count_tokens, the persistent memo, offline bounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise.errors import TokenCountError
from cachewise.prompt import Prompt
from cachewise.tokens import AsyncTokenCounter, TokenCounter, TokenMemo, prefix_bounds
from tests.fixtures.planning import FakeCount, fake_tokens
from tests.strategies import words


def request(n: int = 3) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 5,
        "system": words(300),
        "messages": [
            {"role": "user" if i % 2 == 0 else "assistant", "content": words(50, i)} for i in range(n)
        ],
    }


def test_a_prefix_is_counted_once_ever(tmp_path: Path, count: FakeCount) -> None:
    path = tmp_path / "memo.sqlite3"
    prompt = Prompt(request())
    first = TokenCounter(count, memo=path)
    value = first.count(prompt, 3)
    assert first.calls == 1  # ends on a user turn: no baseline needed
    assert first.count(prompt, 3) == value and first.calls == 1
    again = TokenCounter(count, memo=TokenMemo(path))
    assert again.count(prompt, 3) == value and again.calls == 0
    assert len(count.bodies) == 1


def test_filler_prefixes_subtract_the_baseline(count: FakeCount, memo: TokenMemo) -> None:
    counter = TokenCounter(count, memo=memo)
    prompt = Prompt(request())
    system = counter.count(prompt, 0)
    assert counter.calls == 2  # the prefix, then the placeholder turn alone (once per model)
    padded, _ = prompt.truncated(0)
    assert system == fake_tokens(padded) - fake_tokens(prompt.baseline_body())
    counter.count(prompt, 1)
    assert counter.calls == 3


def test_errors_become_token_count_errors(memo: TokenMemo) -> None:
    counter = TokenCounter(FakeCount(fail=ConnectionError("down")), memo=memo)
    with pytest.raises(TokenCountError, match="ConnectionError: down") as info:
        counter.count(Prompt(request()), 3)
    assert info.value.status is None and counter.failures == 1


def _mock(status: int = 200) -> tuple[list[Any], Any]:
    seen: list[Any] = []

    def handler(req: Any) -> Any:
        seen.append(req)
        payload = json.loads(req.content)
        if status != 200:
            return (status, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        return (200, {"input_tokens": fake_tokens(payload)})

    return seen, handler


@pytest.mark.parametrize("lib", [httpx, httpx2])
def test_httpx_clients_post_to_count_tokens(lib: Any, memo: TokenMemo) -> None:
    seen, handler = _mock()

    def respond(req: Any) -> Any:
        status, payload = handler(req)
        return lib.Response(status, json=payload)

    transport = lib.MockTransport(respond)
    with lib.Client(transport=transport) as http:
        counter = TokenCounter(http, base_url="http://api.test/", api_key="sk-test", memo=memo)
        prompt = Prompt(request())
        assert counter.count(prompt, 3) == fake_tokens(prompt.truncated(3)[0])
    req = seen[0]
    assert str(req.url) == "http://api.test/v1/messages/count_tokens"
    assert req.headers["x-api-key"] == "sk-test" and req.headers["anthropic-version"] == "2026-10-21"
    assert counter.namespace == "http://api.test"


def test_http_errors_carry_the_status(memo: TokenMemo) -> None:
    _, handler = _mock(429)
    transport = httpx.MockTransport(lambda r: httpx.Response(429, json=handler(r)[1]))
    with httpx.Client(transport=transport) as http:
        counter = TokenCounter(http, base_url="http://api.test", memo=memo)
        with pytest.raises(TokenCountError, match="slow down") as info:
            counter.count(Prompt(request()), 3)
    assert info.value.status == 429


def test_anthropic_client_is_used_through_the_sdk(memo: TokenMemo) -> None:
    seen: list[httpx2.Request] = []

    def handler(req: httpx2.Request) -> httpx2.Response:
        seen.append(req)
        return httpx2.Response(200, json={"input_tokens": 1234})

    client = anthropic.Anthropic(
        api_key="sk-test",
        base_url="http://sdk.test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    counter = TokenCounter(client, memo=memo)
    assert counter.count(Prompt(request()), 3) == 1234
    assert seen[0].url.path == "/v1/messages/count_tokens"
    assert json.loads(seen[0].content)["model"] == "claude-test"


async def test_async_counter_with_async_callable_and_async_sdk(memo: TokenMemo) -> None:
    async def count(body: dict[str, Any]) -> int:
        return fake_tokens(body)

    prompt = Prompt(request())
    counter = AsyncTokenCounter(count, memo=memo)
    assert await counter.count(prompt, 3) == fake_tokens(prompt.truncated(3)[0])

    async def handler(req: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"input_tokens": 77})

    client = anthropic.AsyncAnthropic(
        api_key="k",
        base_url="http://sdk.test",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )
    sdk_counter = AsyncTokenCounter(client, memo=TokenMemo(None))
    assert await sdk_counter.count(prompt, 3) == 77
    await client.close()


def test_sync_counter_refuses_async_functions(memo: TokenMemo) -> None:
    async def count(body: dict[str, Any]) -> int:
        return 1

    with pytest.raises(TypeError, match="AsyncTokenCounter"):
        TokenCounter(count, memo=memo)


def test_learned_minimums_persist_and_newer_evidence_wins(tmp_path: Path) -> None:
    memo = TokenMemo(tmp_path / "m.sqlite3")
    assert memo.learn_minimum("ns", "m", above=900).above == 900
    assert memo.learn_minimum("ns", "m", at_most=1500) == memo.minimum("ns", "m")
    again = TokenMemo(tmp_path / "m.sqlite3").minimum("ns", "m")
    assert (again.above, again.at_most) == (900, 1500)
    moved = memo.learn_minimum("ns", "m", at_most=600)  # a write below the old lower bound: it moved
    assert (moved.above, moved.at_most) == (0, 600)


def test_the_learned_minimum_is_read_from_the_file_once_and_follows_every_write(tmp_path: Path) -> None:
    """The planner asks for the minimum on every plan: memory serves it, and each learned fact
    updates memory with the file, so memory, the file and a fresh memo always agree."""
    path = tmp_path / "m.sqlite3"
    memo = TokenMemo(path)
    statements: list[str] = []
    memo._db.set_trace_callback(statements.append)
    assert memo.minimum("ns", "m") == memo.minimum("ns", "m")
    assert sum("SELECT above" in s for s in statements) == 1
    for step in ({"above": 900}, {"at_most": 1500}, {"above": 1000}, {"at_most": 600}, {"above": 700}):
        learned = memo.learn_minimum("ns", "m", **step)
        assert memo.minimum("ns", "m") == learned == TokenMemo(path).minimum("ns", "m")
    assert sum("SELECT above" in s for s in statements) == 1
    assert memo.minimum("ns", "other") == TokenMemo(path).minimum("ns", "other")  # nothing learned


def test_minimums_learned_from_many_threads_end_as_the_file_holds_them(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "m.sqlite3"
    memo = TokenMemo(path)

    def learn(k: int) -> None:
        for i in range(40):
            memo.learn_minimum("ns", f"m{k % 2}", above=i * 10 + k)
            memo.minimum("ns", f"m{k % 2}")

    threads = [threading.Thread(target=learn, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    for model in ("m0", "m1"):
        assert memo.minimum("ns", model) == TokenMemo(path).minimum("ns", model)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=8),
    counted=st.sets(st.integers(min_value=0, max_value=8), max_size=3),
)
def test_offline_bounds_contain_the_true_count(sizes: list[int], counted: set[int]) -> None:
    body = {
        "model": "claude-test",
        "max_tokens": 5,
        "system": words(200),
        "messages": [{"role": "user", "content": words(n, i) or "x"} for i, n in enumerate(sizes)],
    }
    prompt = Prompt(body)
    counter = TokenCounter(fake_tokens, memo=TokenMemo(None))
    known = {i: counter.count(prompt, i) for i in counted if i < len(prompt)}
    order = sorted(known)
    for i in range(len(prompt)):
        truth = counter.count(prompt, i)
        bounds = prefix_bounds(prompt, i, known, order)
        assert bounds.low <= truth <= bounds.high
        assert bounds.low <= bounds.estimate <= bounds.high


def _sdk_pair(handler: Any) -> tuple[anthropic.Anthropic, anthropic.AsyncAnthropic]:
    def sync_handler(req: httpx2.Request) -> httpx2.Response:
        return handler(req)

    async def async_handler(req: httpx2.Request) -> httpx2.Response:
        return handler(req)

    sync = anthropic.Anthropic(
        api_key="k",
        base_url="http://sdk.test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(sync_handler)),
    )
    asynchronous = anthropic.AsyncAnthropic(
        api_key="k",
        base_url="http://sdk.test",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(async_handler)),
    )
    return sync, asynchronous


async def _count(
    counter: TokenCounter | AsyncTokenCounter, prompt: Prompt, index: int, deadline: float | None = None
) -> int:
    if isinstance(counter, AsyncTokenCounter):
        return await counter.count(prompt, index, deadline=deadline)
    return counter.count(prompt, index, deadline=deadline)


@pytest.mark.parametrize("status", [200, 429, 529])
async def test_sync_and_async_counters_behave_alike(status: int) -> None:
    """One core, two drivers: same counts, calls, failures and errors, sync or async (cf. llm's parity)."""
    seen: list[httpx2.Request] = []

    def handler(req: httpx2.Request) -> httpx2.Response:
        seen.append(req)
        if status != 200:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
            return httpx2.Response(status, json=error, headers={"retry-after": "30"})
        return httpx2.Response(200, json={"input_tokens": fake_tokens(json.loads(req.content))})

    sync_client, async_client = _sdk_pair(handler)
    sync = TokenCounter(sync_client, memo=TokenMemo(None))
    asynchronous = AsyncTokenCounter(async_client, memo=TokenMemo(None))
    prompt = Prompt(request())
    outcomes: list[tuple[Any, ...]] = []
    for counter in (sync, asynchronous):
        seen.clear()
        results: list[Any] = []
        for index in (0, 3, 0):  # a filler prefix (and its baseline), a user turn, a memo hit
            try:
                results.append(await _count(counter, prompt, index))
            except TokenCountError as exc:
                results.append((str(exc), exc.status))
        outcomes.append((results, counter.calls, counter.failures, len(seen)))
    await async_client.close()
    sync_client.close()
    assert outcomes[0] == outcomes[1]
    if status != 200:  # no retries, no wait: one request, then no count while retry-after runs
        results, calls, failures, requests = outcomes[0]
        assert (calls, failures, requests) == (1, 1, 1)
        assert "busy" in results[0][0] and results[0][1] == status
        assert all("retry-after" in message for message, _ in results[1:])


class _Clock:
    """Stands in for the ``time`` module in cachewise.tokens."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_retry_after_is_honoured_by_not_counting_never_by_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr("cachewise.tokens.time", clock)
    replies = [(429, {"retry-after": "20"}), (200, {})]
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        status, headers = replies[0] if len(seen) == 1 else replies[1]
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "slow down"}}, headers=headers)
        return httpx.Response(200, json={"input_tokens": 42})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        counter = TokenCounter(http, base_url="http://api.test", memo=TokenMemo(None))
        prompt = Prompt(request())
        with pytest.raises(TokenCountError, match="slow down"):
            counter.count(prompt, 3)
        clock.now += 19  # still inside the retry-after: skipped, no request
        with pytest.raises(TokenCountError, match="retry-after"):
            counter.count(prompt, 3)
        assert len(seen) == 1
        clock.now += 2  # past it: counting resumes
        assert counter.count(prompt, 3) == 42
    assert len(seen) == 2 and counter.calls == 2


async def test_a_spent_deadline_stops_both_drivers_before_any_call(count: FakeCount) -> None:
    async def acount(body: dict[str, Any]) -> int:
        return count(body)

    prompt = Prompt(request())
    for counter in (
        TokenCounter(count, memo=TokenMemo(None)),
        AsyncTokenCounter(acount, memo=TokenMemo(None)),
    ):
        with pytest.raises(TokenCountError, match="count budget"):
            await _count(counter, prompt, 3, deadline=0.0)
        assert counter.calls == 0
    assert count.bodies == []
