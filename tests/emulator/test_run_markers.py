"""Markers on a block inside a run of ``tool_use``/``tool_result`` blocks: both readings.

``run_markers="block"`` (default): the marker writes the prefix ending at its block; the
run still counts as one position of the lookback. ``"run_end"``: markers inside a run take
effect at the end of the run (the computer-use batch reading). docs/emulator.md,
"Markers inside a run". Before the switch the emulator always used ``run_end``, so the
``block`` expectations below failed on it.

Arithmetic (conftest): system ``text(1200)`` = 1203; user ``"hi"`` = 8; a ``tool_use``
``{"name": "f", "input": {}}`` = 3 + 1 + 2 = 6 (the first block of a message + 4); the
tail is 3. Usage tuples are (input, read, 5m write, 1h write).
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest
from click.testing import CliRunner
from emulator_helpers import MODEL, sdk, text
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cachewise.cli import cli
from cachewise.emulator import Emulator, EmulatorServer, layout
from cachewise.errors import EmulatorError

BOTH = pytest.mark.parametrize("reading", ["block", "run_end"])


def usage(message: Any) -> tuple[int, int, int, int]:
    u = message.usage
    return (
        u.input_tokens,
        u.cache_read_input_tokens,
        u.cache_creation.ephemeral_5m_input_tokens,
        u.cache_creation.ephemeral_1h_input_tokens,
    )


def cc(ttl: str | None = None) -> dict[str, Any]:
    return {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}


def use(i: int, ttl: str | None = None, *, mark: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_use", "id": f"toolu_{i}", "name": "f", "input": {}}
    if ttl or mark:
        block["cache_control"] = cc(ttl)
    return block


def result(i: int, ttl: str | None = None, *, mark: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "ok"}
    if ttl or mark:
        block["cache_control"] = cc(ttl)
    return block


def ask(emu: Emulator, run: list[dict[str, Any]], **kw: Any) -> Any:
    # system 1203, "hi" 8 (end 1211), the assistant run (u0 ends 1221, u1 1227, u2 1233), "hi" 8, tail 3.
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": run},
        {"role": "user", "content": "hi"},
    ]
    with sdk(emu) as client:
        return client.messages.create(model=MODEL, max_tokens=8, system=[text(1200)], messages=messages, **kw)


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        ("block", (11, 0, 1233 - 1221, 1221)),  # 1h written at u0, 5m from there to u2
        ("run_end", (11, 0, 0, 1233)),  # both at the run's end, merged as 1h: all 1h
    ],
)
def test_a_1h_and_5m_pair_inside_one_run(reading: str, expected: tuple[int, int, int, int]) -> None:
    emu = Emulator(run_markers=reading)  # type: ignore[arg-type]
    assert usage(ask(emu, [use(0, "1h"), use(1), use(2, "5m")])) == expected
    tokens = sorted(e["tokens"] for e in emu.state()["entries"])
    assert tokens == ([1221, 1233] if reading == "block" else [1233])


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        ("block", (11, 1221, 12, 0)),  # the entry at u0 is read, then a 5m write from u0 to u2
        ("run_end", (11, 1233, 0, 0)),  # the first request wrote at the run's end: all read
    ],
)
def test_an_entry_written_mid_run(reading: str, expected: tuple[int, int, int, int]) -> None:
    emu = Emulator(run_markers=reading)  # type: ignore[arg-type]
    ask(emu, [use(0, mark=True), use(1), use(2)])
    assert usage(ask(emu, [use(0), use(1), use(2, mark=True)])) == expected


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        ("block", (11, 1221, 0, 0)),  # the first request also wrote the prefix ending at u0
        ("run_end", (11, 0, 1221, 0)),  # it wrote only at its run's end (u1): a miss
    ],
)
def test_a_shorter_run_finds_a_mid_run_entry_only_when_markers_write_at_their_block(
    reading: str, expected: tuple[int, int, int, int]
) -> None:
    emu = Emulator(run_markers=reading)  # type: ignore[arg-type]
    ask(emu, [use(0, mark=True), use(1, mark=True)])
    assert usage(ask(emu, [use(0, mark=True)])) == expected


@BOTH
def test_ttl_order_inside_a_run_is_checked_in_block_order(reading: str) -> None:
    emu = Emulator(run_markers=reading)  # type: ignore[arg-type]
    with pytest.raises(
        anthropic.BadRequestError, match=r"messages\.1\.content\.1\.cache_control\.ttl: a ttl='1h'"
    ):
        ask(emu, [use(0, "5m"), use(1, "1h")])


@pytest.mark.parametrize(
    ("reading", "status", "found"),
    [("block", 400, "Found 5."), ("run_end", 200, None)],
)
def test_automatic_caching_after_a_mid_run_marker_counts_differently(
    reading: str, status: int, found: str | None
) -> None:
    # Three system markers and one on r0 of a final tool_result run [r0, r1]; then top-level 5m.
    emu = Emulator(run_markers=reading)  # type: ignore[arg-type]
    body = {
        "model": MODEL,
        "max_tokens": 8,
        "system": [text(1200, mark=True), text(10, mark=True), text(10, mark=True)],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [use(0), use(1)]},
            {"role": "user", "content": [result(0, mark=True), result(1)]},
        ],
        "cache_control": cc(),
    }
    with httpx2.Client(transport=httpx2.MockTransport(lambda r: _handle(emu, r))) as http:
        response = http.post("http://emulator.local/v1/messages", json=body, headers={"x-api-key": "k"})
    assert response.status_code == status, response.text
    if found:
        assert response.json()["error"]["message"].endswith(found)
    # block: the automatic marker goes on r1 (the last block) and takes a fifth slot;
    # run_end: the run already carries a 5m marker, so automatic caching is a no-op.


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        ("block", "ok"),  # 1h at r0 (ends 1235), the automatic 5m on r1 (ends 1239)
        ("run_end", "conflict"),  # the run carries 1h at its end, where the 5m automatic marker goes
    ],
)
def test_automatic_caching_conflict_with_a_mid_run_1h_marker(reading: str, expected: str) -> None:
    emu = Emulator(run_markers=reading)  # type: ignore[arg-type]
    messages = [
        {"role": "user", "content": "hi"},  # 1203 + 8 = 1211
        {"role": "assistant", "content": [use(0), use(1)]},  # 10 + 6 -> 1227
        {"role": "user", "content": [result(0, "1h"), result(1)]},  # r0 = 4 + 4 -> 1235; r1 = 4 -> 1239
    ]
    with sdk(emu) as client:
        if expected == "conflict":
            with pytest.raises(
                anthropic.BadRequestError, match="conflicts with the cache_control on the last block"
            ):
                client.messages.create(
                    model=MODEL, max_tokens=8, system=[text(1200)], messages=messages, cache_control=cc()
                )
            return
        message = client.messages.create(
            model=MODEL, max_tokens=8, system=[text(1200)], messages=messages, cache_control=cc()
        )
    assert usage(message) == (3, 0, 1239 - 1235, 1235)


def _handle(emu: Emulator, request: httpx2.Request) -> httpx2.Response:
    from cachewise.emulator import HttpRequest

    answer = emu.handle(
        HttpRequest(request.method, request.url.path, headers=dict(request.headers), body=request.read())
    )
    return httpx2.Response(answer.status, headers=answer.headers, content=answer.body)


# -- markers only at run ends: both readings agree (what the planner relies on) -------------

_run_block = st.sampled_from(["text", "tool_use", "tool_result"])


@st.composite
def _turns(draw: st.DrawFn, start: int) -> list[dict[str, Any]]:
    """Messages whose markers sit on non-run blocks or on the last block of a run."""
    messages: list[dict[str, Any]] = []
    for turn in range(start, start + draw(st.integers(1, 3))):
        kinds = draw(st.lists(_run_block, min_size=1, max_size=6))
        blocks: list[dict[str, Any]] = []
        for k, kind in enumerate(kinds):
            if kind == "text":
                block: dict[str, Any] = {"type": "text", "text": f"tok {turn} {k}"}
            elif kind == "tool_use":
                block = use(turn * 10 + k)
            else:
                block = result(turn * 10 + k)
            run_continues = k + 1 < len(kinds) and kinds[k + 1] == kind and kind != "text"
            if not run_continues and draw(st.integers(0, 3)) == 0:
                block["cache_control"] = cc()
            blocks.append(block)
        messages.append({"role": "assistant" if turn % 2 == 0 else "user", "content": blocks})
    return messages


def _markers(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages for b in m["content"] if "cache_control" in b)


@st.composite
def _conversation(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A request, and the next one: the same history (markers moved) plus appended turns."""
    history = [{"role": "user", "content": "hi"}, *draw(_turns(0))]
    later = draw(_turns(len(history)))
    moved = [
        {**m, "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in m["content"]]}
        for m in history[1:]
    ]
    if draw(st.booleans()):
        moved = history[1:]  # or keep them where they were
    first_messages, second_messages = history, [history[0], *moved, *later]
    assume(_markers(first_messages[1:]) <= 3 and _markers(second_messages[1:]) <= 3)

    def body(messages: list[dict[str, Any]]) -> dict[str, Any]:
        auto = {"cache_control": cc()} if draw(st.booleans()) else {}
        return {"model": MODEL, "max_tokens": 8, "system": [text(1200)], "messages": messages, **auto}

    return body(first_messages), body(second_messages)


@settings(max_examples=80, deadline=None)
@given(_conversation())
def test_markers_at_run_ends_bill_the_same_under_both_readings(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    # Conversations grow by appending turns; a run once sent is not extended later (see the next test).
    first, second = pair
    bills = []
    for reading in ("block", "run_end"):
        emu = Emulator(run_markers=reading)  # type: ignore[arg-type]
        with sdk(emu) as client:
            bills.append([usage(client.messages.create(**body)) for body in (first, second, first)])
        plan = layout(second, MODEL, run_markers=reading)  # type: ignore[arg-type]
        assert plan.marker_count == layout(second, MODEL, run_markers="block").marker_count
    assert bills[0] == bills[1]


@pytest.mark.parametrize(("reading", "read"), [("block", 1221), ("run_end", 0)])
def test_a_run_extended_past_an_earlier_entry_reads_it_only_under_block(reading: str, read: int) -> None:
    # The first request's run ends at u0 (marked there); the second's run goes on to u1, marked
    # at its end. block checks every cut of the run (u0's prefix is one); run_end only the run's end.
    emu = Emulator(run_markers=reading)  # type: ignore[arg-type]
    ask(emu, [use(0, mark=True)])
    assert usage(ask(emu, [use(0), use(1, mark=True)]))[1] == read


# -- the switch: constructor, control API, reset, CLI, pytest marker ------------------------


def test_the_switch_is_validated_and_reset_restores_it() -> None:
    with pytest.raises(EmulatorError, match="run_markers: expected one of block, run_end"):
        Emulator(run_markers="middle")  # type: ignore[arg-type]
    emu = Emulator()
    assert emu.run_markers == "block" and emu.state()["run_markers"] == "block"
    emu.set_run_markers("run_end")
    assert emu.state()["run_markers"] == "run_end"
    emu.reset()
    assert emu.run_markers == "block"


def test_control_api_switches_the_reading() -> None:
    with (
        EmulatorServer(Emulator(run_markers="run_end")) as server,
        httpx2.Client(base_url=server.base_url) as http,
    ):
        assert http.get("/_emulator/state").json()["run_markers"] == "run_end"
        assert http.post("/_emulator/config", json={"run_markers": "block"}).json() == {
            "run_markers": "block"
        }
        assert server.emulator.run_markers == "block"
        bad = http.post("/_emulator/config", json={"run_markers": "nope"})
        assert bad.status_code == 400 and "run_markers" in bad.json()["error"]["message"]
        assert http.post("/_emulator/config", content=json.dumps([1])).status_code == 400
        http.post("/_emulator/reset")
        assert server.emulator.run_markers == "run_end"


def test_cli_has_the_option() -> None:
    result = CliRunner().invoke(cli, ["emulate", "--help"])
    assert result.exit_code == 0 and "--run-markers" in result.output and "run_end" in result.output
    bad = CliRunner().invoke(cli, ["emulate", "--run-markers", "middle"])
    assert bad.exit_code == 2


@pytest.mark.claude_emulator(run_markers="run_end")
def test_the_pytest_marker_configures_the_fixture(claude_emulator_inprocess: Emulator) -> None:
    assert claude_emulator_inprocess.run_markers == "run_end"


def test_the_fixture_defaults_to_block(claude_emulator_inprocess: Emulator) -> None:
    assert claude_emulator_inprocess.run_markers == "block"


# -- end to end: cachewise's planner bills the same under both readings ---------------------

AGENT_SYSTEM = "You are a build agent with tools.\n" + "Rules that never change. " * 700
AGENT_TOOLS = [
    {
        "name": name,
        "description": f"{name} a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    }
    for name in ("read", "grep", "stat")
]


def _agent_run(emulator: Emulator, tmp_path: Any) -> list[tuple[int, int, int, int]]:
    """A parallel-tool agent loop through cachewise.wrap with the default planner."""
    import cachewise
    from cachewise.ledger import Ledger

    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the build."}]
    with sdk(emulator) as client, Ledger(tmp_path / f"{emulator.run_markers}.sqlite") as ledger:
        wrapped = cachewise.wrap(client, ledger=ledger, clock=emulator.now)
        for turn in range(8):
            reply = wrapped.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=32,
                system=AGENT_SYSTEM,
                tools=AGENT_TOOLS,
                messages=messages,
            )
            calls = [
                {
                    "type": "tool_use",
                    "id": f"toolu_{turn}_{k}",
                    "name": AGENT_TOOLS[k]["name"],
                    "input": {"path": "a"},
                }
                for k in range(3)
            ]
            messages.append(
                {"role": "assistant", "content": [*[b.model_dump() for b in reply.content], *calls]}
            )
            results = [
                {
                    "type": "tool_result",
                    "tool_use_id": c["id"],
                    "content": f"result {turn} {k} " + "line " * 40,
                }
                for k, c in enumerate(calls)
            ]
            messages.append({"role": "user", "content": results})
            emulator.advance(20)
    return [
        (
            row["usage"]["input_tokens"],
            row["usage"]["cache_read_input_tokens"],
            row["usage"]["cache_creation"]["ephemeral_5m_input_tokens"],
            row["usage"]["cache_creation"]["ephemeral_1h_input_tokens"],
        )
        for row in emulator.bill()
    ]


def test_the_planner_bills_the_same_under_both_readings(tmp_path: Any) -> None:
    # The planner marks only the last block of a run, so where a mid-run marker would write
    # does not change what it saves (issue: its savings must not depend on the API's reading).
    block = _agent_run(Emulator(run_markers="block"), tmp_path)
    run_end = _agent_run(Emulator(run_markers="run_end"), tmp_path)
    assert block == run_end
    assert sum(read for _, read, _, _ in block) > 0  # the planner did cache something
