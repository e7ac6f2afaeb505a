"""Fan-out: N concurrent calls on a new prefix pay one write, not N (hold and pre-warm), sync and async.

The emulator makes an entry readable only when the writing response begins; a ``delay``
fault makes each response begin a little after its request is read, so concurrent
requests really overlap (threads for the sync client, ``asyncio.gather`` for the async one).
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

import cachewise
from cachewise.breakpoints import Breakpoint
from cachewise.emulator import DEFAULT_START, Emulator, EmulatorServer
from cachewise.failopen import raising
from cachewise.integrations.fanout import Admission, FanOut, prewarm_body
from cachewise.integrations.tracker import Prepared
from cachewise.ledger import Ledger
from cachewise.planner import Plan
from cachewise.wrap import tracker_of

from .conftest import API_KEY

MODEL = "claude-sonnet-4-6"
SHARED = "You review contracts clause by clause and cite each clause you rely on. " * 500
N = 6


def _body(i: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 16,
        "system": SHARED,
        "messages": [{"role": "user", "content": f"Summarise clause {i}."}],
    }


@pytest.fixture
def emu(emulator: EmulatorServer) -> Emulator:
    return emulator.emulator


@pytest.fixture
def sync_client(emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=0) as opened:
        yield opened


def _wrapped(client: Any, emu: Emulator, ledger: Ledger, **kw: Any) -> Any:
    return cachewise.wrap(client, ledger=ledger, clock=emu.now, diagnostics=False, **kw)


def _fan(client: Any, n: int = N) -> list[Any]:
    """``n`` calls on ``client`` from ``n`` threads at once; their responses."""
    out: list[Any] = [None] * n
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            out[i] = client.messages.create(**_body(i))
        except BaseException as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    return out


def _shared_tokens(emu: Emulator) -> int:
    """A floor for the shared system prompt's size: the calls' own tails are a few tokens."""
    return 5000


def _open_when_all_in_flight(emu: Emulator, n: int) -> threading.Thread:
    """Hold the next ``n`` responses until all ``n`` requests are in flight (the started thread opens them).

    No response can then begin before the last request is read, however slowly the callers start
    (a 0.3 s ``delay`` lost that race on a loaded CI runner).
    """
    gate = emu.faults.hold(count=n)
    opener = threading.Thread(target=lambda: (emu.wait_in_flight(n, timeout=30), gate.set()), daemon=True)
    opener.start()
    return opener


def _writes_and_reads(emu: Emulator, shared: int) -> tuple[int, int]:
    """How many billed calls wrote the shared prefix, and how many read it."""
    rows = [r.usage for r in emu.billing.rows()]
    writes = sum(1 for u in rows if u["cache_creation_input_tokens"] >= shared)
    reads = sum(1 for u in rows if u["cache_read_input_tokens"] >= shared)
    return writes, reads


def test_without_fanout_control_every_concurrent_call_writes(
    sync_client: anthropic.Anthropic, emu: Emulator, ledger: Ledger
) -> None:
    client = _wrapped(sync_client, emu, ledger, fanout="off")
    opener = _open_when_all_in_flight(emu, N)
    _fan(client)
    opener.join(30)
    assert _writes_and_reads(emu, _shared_tokens(emu)) == (N, 0)


def test_hold_makes_one_write_and_n_minus_one_reads_threads(
    sync_client: anthropic.Anthropic, emu: Emulator, ledger: Ledger
) -> None:
    client = _wrapped(sync_client, emu, ledger, fanout="hold", fanout_timeout=10)
    emu.faults.add("delay", count=N, seconds=0.3)
    responses = _fan(client)
    shared = _shared_tokens(emu)
    assert _writes_and_reads(emu, shared) == (1, N - 1)
    assert sorted(r.usage.cache_read_input_tokens >= shared for r in responses) == [False] + [True] * (N - 1)
    fanout = client._cachewise_tracker  # the tracker is reachable; the fan-out state is the middleware's
    assert fanout is tracker_of(client)


def test_hold_without_a_planner_uses_the_callers_markers(
    sync_client: anthropic.Anthropic, emu: Emulator, ledger: Ledger
) -> None:
    client = _wrapped(sync_client, emu, ledger, planner=False, fanout="hold", fanout_timeout=10)
    emu.faults.add("delay", count=N, seconds=0.3)
    out: list[Any] = []

    def one(i: int) -> None:
        body = _body(i)
        body["system"] = [{"type": "text", "text": SHARED, "cache_control": {"type": "ephemeral"}}]
        out.append(client.messages.create(**body))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(out) == N
    assert _writes_and_reads(emu, _shared_tokens(emu)) == (1, N - 1)


def test_hold_releases_streamed_followers_when_the_lead_stream_begins(
    sync_client: anthropic.Anthropic, emu: Emulator, ledger: Ledger
) -> None:
    client = _wrapped(sync_client, emu, ledger, fanout="hold", fanout_timeout=10)
    emu.faults.add("delay", count=N, seconds=0.3)
    texts: list[str] = []

    def one(i: int) -> None:
        with client.messages.stream(**_body(i)) as stream:
            texts.append(stream.get_final_text())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(texts) == N
    assert _writes_and_reads(emu, _shared_tokens(emu)) == (1, N - 1)
    assert _fanout_of(client).counts["timeouts"] == 0
    ledger.flush()
    assert {r.endpoint for r in ledger.calls()} == {"stream"} and len(ledger.calls()) == N


def test_hold_makes_one_write_and_n_minus_one_reads_asyncio(
    emulator: EmulatorServer, emu: Emulator, ledger: Ledger
) -> None:
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def main() -> list[Any]:
        async with anthropic.AsyncAnthropic(
            api_key=API_KEY, base_url=emulator.base_url, max_retries=0
        ) as raw:
            client = _wrapped(raw, emu, ledger, fanout="hold", fanout_timeout=10)
            stop = asyncio.Event()
            beat = asyncio.create_task(ticker(stop))
            responses = await asyncio.gather(*(client.messages.create(**_body(i)) for i in range(N)))
            stop.set()
            await beat
            return list(responses)

    emu.faults.add("delay", count=N, seconds=0.5)
    responses = asyncio.run(main())
    shared = _shared_tokens(emu)
    assert _writes_and_reads(emu, shared) == (1, N - 1)
    assert sum(r.usage.cache_read_input_tokens >= shared for r in responses) == N - 1
    # The held calls waited on futures: the loop kept running (0.5 s of 10 ms ticks).
    assert ticks >= 20


def test_hold_timeout_sends_anyway(sync_client: anthropic.Anthropic, emu: Emulator, ledger: Ledger) -> None:
    client = _wrapped(sync_client, emu, ledger, fanout="hold", fanout_timeout=0.2)
    gate = emu.faults.hold()  # the first response does not begin until the gate opens
    first: list[Any] = []
    leader = threading.Thread(target=lambda: first.append(client.messages.create(**_body(0))))
    leader.start()
    assert emu.wait_in_flight(1)
    followers = [client.messages.create(**_body(i)) for i in (1, 2)]  # each waits 0.2 s, then goes
    gate.set()
    leader.join(10)
    # The first follower went after 0.2 s and missed (the leader had not begun); the second
    # also waited for the leader, timed out, and read what the first follower wrote.
    assert first and followers[0].usage.cache_read_input_tokens == 0
    middleware_fanout = _fanout_of(client)
    assert middleware_fanout.counts["timeouts"] == 2
    assert middleware_fanout.in_flight() == 0


def _prepared(prefix: str = "p1") -> Prepared:
    plan = Plan(
        request={},
        model=MODEL,
        planned_at=DEFAULT_START,
        breakpoints=(Breakpoint(position=0, ttl="5m", prefix_hash=prefix),),
    )
    return Prepared(original={}, body={}, started_at=DEFAULT_START, started=0.0, plan=plan)


def test_when_a_lead_fails_one_follower_leads_next_and_the_rest_wait_for_it() -> None:
    fanout = FanOut("hold", timeout=30)
    lead = fanout.admit(_prepared(), DEFAULT_START)
    assert lead.leads and not lead.waits
    admissions = [fanout.admit(_prepared(), DEFAULT_START) for _ in range(3)]
    assert all(a.waits and not a.leads for a in admissions)
    threads = [threading.Thread(target=fanout.wait, args=(a,)) for a in admissions]
    for t in threads:
        t.start()
    fanout.release(lead, ok=False, now=DEFAULT_START)  # e.g. a 529: nothing was written
    deadline = time.monotonic() + 10
    while not any(a.leads for a in admissions) and time.monotonic() < deadline:
        time.sleep(0.01)
    new_leads = [a for a in admissions if a.leads]
    assert len(new_leads) == 1  # exactly one follower took the prefix over ...
    time.sleep(0.1)
    assert sum(t.is_alive() for t in threads) == 2  # ... and the other two wait for it
    fanout.release(new_leads[0], ok=True, now=DEFAULT_START)
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert fanout.counts["timeouts"] == 0 and fanout.in_flight() == 0
    # the prefix is now warm: a newcomer neither waits nor leads
    later = fanout.admit(_prepared(), DEFAULT_START)
    assert not later.waits and not later.leads
    assert fanout.admit(_prepared("p2"), DEFAULT_START).leads  # another prefix is still cold


async def _async_followers(fanout: FanOut) -> list[Admission]:
    lead = fanout.admit(_prepared(), DEFAULT_START)
    admissions = [fanout.admit(_prepared(), DEFAULT_START) for _ in range(3)]
    tasks = [asyncio.create_task(fanout.await_(a)) for a in admissions]
    await asyncio.sleep(0.05)
    # the lead is released from another thread, as a sync request on the same client would
    failed = {"ok": False, "now": DEFAULT_START}
    releaser = threading.Thread(target=fanout.release, args=(lead,), kwargs=failed)
    releaser.start()
    releaser.join()
    for _ in range(100):
        if any(a.leads for a in admissions):
            break
        await asyncio.sleep(0.01)
    new = next(a for a in admissions if a.leads)
    fanout.release(new, ok=True, now=DEFAULT_START)
    await asyncio.gather(*tasks)
    return admissions


def test_async_followers_take_over_a_failed_lead_the_same_way() -> None:
    fanout = FanOut("hold", timeout=30)
    admissions = asyncio.run(_async_followers(fanout))
    assert sum(bool(a.leads) for a in admissions) == 1
    assert not any(a.timed_out for a in admissions) and fanout.in_flight() == 0


def test_prewarm_writes_once_then_every_call_reads(
    sync_client: anthropic.Anthropic, emu: Emulator, ledger: Ledger
) -> None:
    client = _wrapped(sync_client, emu, ledger, fanout="prewarm", fanout_timeout=10)
    emu.faults.add("delay", count=N + 1, seconds=0.3)
    responses = _fan(client)
    rows = emu.billing.rows()
    warm = [r for r in rows if r.usage["output_tokens"] == 0]
    assert len(warm) == 1 and len(rows) == N + 1  # one pre-warm, then the N calls
    shared = warm[0].usage["cache_creation_input_tokens"]
    assert shared > _shared_tokens(emu)
    assert all(r.usage.cache_read_input_tokens >= _shared_tokens(emu) for r in responses)
    assert sum(r.usage.cache_creation_input_tokens >= _shared_tokens(emu) for r in responses) == 0
    ledger.flush()
    tagged = [row for row in ledger.calls() if row.tags.get("cachewise_fanout") == "prewarm"]
    assert len(tagged) == 1 and tagged[0].usage.output_tokens == 0
    assert tagged[0].cost is not None and tagged[0].cost.cost_total > 0


def test_prewarm_async(emulator: EmulatorServer, emu: Emulator, ledger: Ledger) -> None:
    async def main() -> list[Any]:
        async with anthropic.AsyncAnthropic(
            api_key=API_KEY, base_url=emulator.base_url, max_retries=0
        ) as raw:
            client = _wrapped(raw, emu, ledger, fanout="prewarm", fanout_timeout=10)
            return list(await asyncio.gather(*(client.messages.create(**_body(i)) for i in range(N))))

    emu.faults.add("delay", count=N + 1, seconds=0.3)
    responses = asyncio.run(main())
    assert sum(row.usage["output_tokens"] == 0 for row in emu.billing.rows()) == 1
    assert all(r.usage.cache_read_input_tokens > 1024 for r in responses)


def test_prewarm_body_respects_what_the_api_refuses() -> None:
    body = {**_body(0), "stream": True}
    warm = prewarm_body(body)
    assert warm is not None and warm["max_tokens"] == 0 and "stream" not in warm
    assert body["max_tokens"] == 16  # the user's body is not touched
    assert prewarm_body({**body, "thinking": {"type": "enabled", "budget_tokens": 2048}}) is None
    assert prewarm_body({**body, "tool_choice": {"type": "any"}}) is None
    assert prewarm_body({**body, "output_config": {"format": {"type": "json_schema"}}}) is None
    assert prewarm_body({**body, "thinking": {"type": "adaptive"}}) is not None


def test_a_broken_hold_sends_the_call_as_written(
    sync_client: anthropic.Anthropic, emu: Emulator, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: FanOut, admission: Any) -> None:
        raise RuntimeError("hold is broken")

    monkeypatch.setattr(FanOut, "wait", broken)
    client = _wrapped(sync_client, emu, ledger, fanout="hold")
    emu.faults.add("delay", count=N, seconds=0.3)
    with raising(False):
        responses = _fan(client, 3)
    assert all(r.content for r in responses)
    assert _fanout_of(client).in_flight() == 0


def test_bad_fanout_settings_are_named() -> None:
    client = anthropic.Anthropic(api_key="k")
    with pytest.raises(ValueError, match="fanout: expected one of"):
        cachewise.wrap(client, ledger="sqlite://", fanout="wait")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fanout_timeout"):
        cachewise.wrap(client, ledger="sqlite://", fanout_timeout=-1)


def _fanout_of(client: Any) -> FanOut:
    middleware = next(m for m in client._middleware if hasattr(m, "fanout"))
    fanout = middleware.fanout
    assert isinstance(fanout, FanOut)
    return fanout


def test_unplanned_calls_are_held_only_on_the_markers_they_carry() -> None:
    fanout = FanOut("hold")

    def unplanned(body: dict[str, Any]) -> Prepared:
        return Prepared(original=body, body=body, started_at=DEFAULT_START, started=0.0)

    assert not fanout.admit(unplanned(_body(0)), DEFAULT_START).leads  # no marker: nothing to wait for
    nested = _body(1)
    nested["messages"] = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
                }
            ],
        },
    ]
    first = fanout.admit(unplanned(nested), DEFAULT_START)
    assert len(first.leads) == 1
    second = fanout.admit(unplanned(copy.deepcopy(nested)), DEFAULT_START)
    assert second.waits and not second.leads
    fanout.release(first, ok=True, now=DEFAULT_START)
