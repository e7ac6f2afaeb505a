"""Every caching rule of docs/api-notes.md §1–2, with hand-derived expectations.

Arithmetic (see conftest): ``text(n)`` = n + 3 tokens; a message adds 4 to its first
block; a string message ``"hi"`` = 1 + 3 + 4 = 8; the tail is 3 and never cached.
Model claude-sonnet-5: minimum 1,024 tokens. Usage tuples are
(input, cache_read, 5m write, 1h write).
"""

from __future__ import annotations

import threading
from typing import Any

import anthropic
import pytest
from emulator_helpers import MODEL, sdk, text, words

from cachewise.emulator import Emulator
from cachewise.emulator.tokenizer import count_json


def usage(message: Any) -> tuple[int, int, int, int]:
    u = message.usage
    assert u.cache_creation is not None
    assert u.cache_creation_input_tokens == u.cache_creation.ephemeral_5m_input_tokens + (
        u.cache_creation.ephemeral_1h_input_tokens
    )
    return (
        u.input_tokens,
        u.cache_read_input_tokens,
        u.cache_creation.ephemeral_5m_input_tokens,
        u.cache_creation.ephemeral_1h_input_tokens,
    )


def ask(client: anthropic.Anthropic, **kw: Any) -> Any:
    kw.setdefault("model", MODEL)
    kw.setdefault("max_tokens", 16)
    kw.setdefault("messages", [{"role": "user", "content": "hi"}])
    return client.messages.create(**kw)


# -- writes, reads, lookback ------------------------------------------------------------------


def test_write_then_read(client: anthropic.Anthropic) -> None:
    system = [text(1997, mark=True)]  # 1997 + 3 = 2000 tokens at the marker
    # first: 2000 written (5m), "hi" 8 + tail 3 = 11 uncached
    assert usage(ask(client, system=system)) == (11, 0, 2000, 0)
    # second: the same prefix is read
    assert usage(ask(client, system=system)) == (11, 2000, 0, 0)


def _blocks(count: int, mark_at: int) -> list[dict[str, Any]]:
    return [text(1, mark=(i == mark_at)) for i in range(count)]


def test_lookback_finds_an_entry_20_positions_back_counting_the_marker(emu: Emulator) -> None:
    # Positions: 0 = system text(1200) = 1203; 1 = first "tok" block 1+3+4 = 8 (end 1211);
    # k >= 2: 4 tokens each, end(k) = 1211 + 4(k-1).
    system = [text(1200)]
    with sdk(emu) as client:
        first = ask(client, system=system, messages=[{"role": "user", "content": _blocks(1, 0)}])
        assert usage(first) == (3, 0, 1211, 0)
        # marker at position 20: checks 20, 19, ..., 1 (20 positions) -> hit at 1 (A = 1211);
        # C = end(20) = 1211 + 76 = 1287; 5m write = 76; input = tail 3.
        second = ask(client, system=system, messages=[{"role": "user", "content": _blocks(20, 19)}])
        assert usage(second) == (3, 1211, 76, 0)


def test_lookback_misses_an_entry_21_positions_back(emu: Emulator) -> None:
    system = [text(1200)]
    with sdk(emu) as client:
        ask(client, system=system, messages=[{"role": "user", "content": _blocks(1, 0)}])
        # marker at position 21: checks 21..2, never 1 -> miss; writes end(21) = 1211 + 80 = 1291.
        third = ask(client, system=system, messages=[{"role": "user", "content": _blocks(21, 20)}])
        assert usage(third) == (3, 0, 1291, 0)


def _tool_turns(*, alternate: bool) -> list[dict[str, Any]]:
    uses: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for i in range(25):
        uses.append({"type": "tool_use", "id": f"toolu_{i}", "name": "f", "input": {}})
        results.append({"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "ok"})
        if alternate:
            uses.append({"type": "text", "text": "tok"})
            results.append({"type": "text", "text": "tok"})
    results[-1]["cache_control"] = {"type": "ephemeral"}
    return [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": uses},
        {"role": "user", "content": results},
    ]


def test_a_run_of_tool_use_and_a_run_of_tool_result_are_one_position_each(
    client: anthropic.Anthropic,
) -> None:
    # Write the system prefix: text(1200) = 1203.
    assert usage(ask(client, system=[text(1200, mark=True)])) == (11, 0, 1203, 0)
    # Positions: 0 system, 1 "hi" (8), 2 the 25 tool_use blocks, 3 the 25 tool_result blocks.
    # tool_use = 3 + name 1 + "{}" 2 = 6 each -> 150 + 4 = 154; tool_result = 3 + "ok" 1 = 4 -> 100 + 4 = 104.
    # The marker on the last tool_result looks back 3 positions to the system entry: A = 1203.
    # C = 1203 + 8 + 154 + 104 = 1469 -> 5m write 266.
    assert usage(ask(client, system=[text(1200)], messages=_tool_turns(alternate=False))) == (3, 1203, 266, 0)


def test_without_runs_the_same_entry_is_out_of_reach(client: anthropic.Anthropic) -> None:
    ask(client, system=[text(1200, mark=True)])
    # Text blocks between the tool blocks break the runs: 100 positions, far beyond 20 -> miss.
    message = ask(client, system=[text(1200)], messages=_tool_turns(alternate=True))
    read = usage(message)[1]
    assert read == 0


# -- TTL -------------------------------------------------------------------------------------


def test_5m_entry_expires_exactly_at_five_minutes(emu: Emulator) -> None:
    system = [text(1997, mark=True)]
    with sdk(emu) as client:
        ask(client, system=system)
        emu.advance(299)  # alive while now < start + 300 s
        assert usage(ask(client, system=system))[1] == 2000
    emu.reset()
    with sdk(emu) as client:
        ask(client, system=system)
        emu.advance(300)  # exactly 5m: expired -> written again
        assert usage(ask(client, system=system)) == (11, 0, 2000, 0)


def test_a_read_refreshes_the_entry_from_the_reading_request_start(emu: Emulator) -> None:
    system = [text(1997, mark=True)]
    with sdk(emu) as client:
        ask(client, system=system)  # t=0, expires 300
        emu.advance(299)
        ask(client, system=system)  # t=299 read, now expires 599
        emu.advance(299)  # t=598 > 300: alive only because of the refresh
        assert usage(ask(client, system=system))[1] == 2000
    assert emu.state()["entries"][0]["expires_at"] == "2026-11-20T12:14:58+00:00"  # 598 + 300 s


def test_1h_entry_lives_an_hour(emu: Emulator) -> None:
    system = [text(1997, "1h")]
    with sdk(emu) as client:
        assert usage(ask(client, system=system)) == (11, 0, 0, 2000)
        emu.advance(3599)
        assert usage(ask(client, system=system))[1] == 2000
        emu.advance(3600)  # 3599 + 3600 from the refresh at 3599: expired exactly
        assert usage(ask(client, system=system)) == (11, 0, 0, 2000)


# -- minimums ------------------------------------------------------------------------------


def test_below_the_minimum_nothing_is_cached_and_nothing_errors(emu: Emulator) -> None:
    system = [text(1000, mark=True)]  # 1003 < 1,024 (claude-sonnet-5)
    with sdk(emu) as client:
        first = ask(client, system=system)
        assert usage(first) == (1003 + 11, 0, 0, 0)
        assert usage(ask(client, system=system)) == (1014, 0, 0, 0)
        assert emu.state()["entries"] == []
        # The same prompt on claude-opus-5 (minimum 512) is cached.
        assert usage(ask(client, system=system, model="claude-opus-5")) == (11, 0, 1003, 0)


# -- mixed TTL billing (docs/api-notes.md §2.1 step 3) -----------------------------------------------


def test_mixed_ttl_billing_a_b_c(emu: Emulator) -> None:
    # sys0 text(1200) 1h = 1203; sys1 text(300) 1h = 303; sys2 text(200) 5m = 203; "hi" 8; tail 3.
    def system(n1: int, n2: int) -> list[dict[str, Any]]:
        return [text(1200, "1h"), text(n1, "1h"), text(n2, "5m")]

    with sdk(emu) as client:
        # A = 0; B = 1203 + 303 = 1506 (1h write); C = 1506 + 203 = 1709 (5m write 203).
        assert usage(ask(client, system=system(300, 200))) == (11, 0, 203, 1506)
        # sys2 changed: hit at sys1 -> A = 1506; no 1h marker after A -> B = A; C = 1506 + 204.
        assert usage(ask(client, system=system(300, 201))) == (11, 1506, 204, 0)
        # sys1 changed: hit at sys0 -> A = 1203; B = 1203 + 304 = 1507; C = 1507 + 204 = 1711.
        assert usage(ask(client, system=system(301, 201))) == (11, 1203, 204, 304)


# -- automatic caching (docs/api-notes.md §1.3) -------------------------------------------------------

AUTO = {"type": "ephemeral"}


def test_automatic_caching_moves_forward_as_the_conversation_grows(client: anthropic.Anthropic) -> None:
    system = [text(1200)]
    turn1 = [{"role": "user", "content": "hi"}]
    # marker on the last block: 1203 + 8 = 1211 written.
    assert usage(ask(client, system=system, messages=turn1, cache_control=AUTO)) == (3, 0, 1211, 0)
    turn2 = [*turn1, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "hi"}]
    # marker moves to the new last block; its lookback finds turn 1's entry: read 1211, write 8 + 8.
    assert usage(ask(client, system=system, messages=turn2, cache_control=AUTO)) == (3, 1211, 16, 0)


def test_automatic_marker_skips_ineligible_trailing_blocks(client: anthropic.Anthropic) -> None:
    messages = [
        {"role": "user", "content": [text(1200), {"type": "thinking", "thinking": "tok", "signature": "s"}]}
    ]
    # Thinking is ineligible: the marker walks back to the text block: 1200 + 3 + 4 = 1207 written;
    # the thinking block (3 + 1) and the tail 3 are input.
    assert usage(ask(client, messages=messages, cache_control=AUTO)) == (7, 0, 1207, 0)


def test_automatic_caching_same_ttl_on_last_block_is_a_no_op(client: anthropic.Anthropic) -> None:
    marked = [text(10, mark=True), text(10, mark=True), text(10, mark=True), text(1200, mark=True)]
    # 4 explicit markers and a top-level marker with the same TTL as the last block: allowed.
    message = ask(client, messages=[{"role": "user", "content": marked}], cache_control=AUTO)
    assert usage(message) == (3, 0, 13 + 4 + 13 + 13 + 1203, 0)


def test_automatic_caching_with_a_different_ttl_on_the_last_block_is_400(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(
            client,
            messages=[{"role": "user", "content": [text(1200, "5m")]}],
            cache_control={"type": "ephemeral", "ttl": "1h"},
        )
    assert err.value.status_code == 400
    assert "conflicts with the cache_control on the last block messages.0.content.0" in str(err.value)


def test_automatic_caching_with_four_explicit_markers_is_400(client: anthropic.Anthropic) -> None:
    blocks = [text(10, mark=True) for _ in range(4)] + [text(1200)]
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(client, messages=[{"role": "user", "content": blocks}], cache_control=AUTO)
    assert err.value.body["error"]["message"] == (  # type: ignore[index]
        "A maximum of 4 blocks with cache_control may be provided. Found 5."
    )


# -- invalidation levels (docs/api-notes.md §2.4) ----------------------------------------------------

TOOL = {"name": "lookup", "description": words(1100), "input_schema": {"type": "object"}}
TOOL_TOKENS = 8 + count_json(TOOL)  # tool overhead 8 + its compact JSON


def _levels(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "tools": [{**TOOL, "cache_control": {"type": "ephemeral"}}],
        "system": [text(200, mark=True)],
        "messages": [{"role": "user", "content": [text(300, mark=True)]}],
    }
    request.update(overrides)
    return request


SYSTEM_END = TOOL_TOKENS + 203
MESSAGES_END = SYSTEM_END + 307


@pytest.mark.parametrize(
    ("change", "read"),
    [
        ({}, MESSAGES_END),
        ({"tools": [{**TOOL, "description": words(1101), "cache_control": {"type": "ephemeral"}}]}, 0),
        ({"speed": "fast", "model": "claude-opus-5"}, TOOL_TOKENS),
        ({"tool_choice": {"type": "any"}}, SYSTEM_END),
        ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}, SYSTEM_END),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}, SYSTEM_END),
        (
            {"tool_choice": {"type": "auto"}, "thinking": {"type": "disabled"}},
            MESSAGES_END,
        ),  # defaults = omitted
    ],
    ids=[
        "same",
        "tools-changed",
        "speed",
        "tool-choice",
        "parallel-tool-use",
        "thinking",
        "explicit-defaults",
    ],
)
def test_invalidation_levels(emu: Emulator, change: dict[str, Any], read: int) -> None:
    model = change.get("model", MODEL)
    with sdk(emu) as client:
        ask(client, model=model, **_levels())
        second = ask(client, **{"model": model, **_levels(**change)})
    assert usage(second)[1] == read


def test_adding_an_image_invalidates_messages_only(client: anthropic.Anthropic) -> None:
    ask(client, **_levels())
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    later = _levels()
    later["messages"] = [
        *later["messages"],
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [image]},
    ]
    assert usage(ask(client, **later))[1] == SYSTEM_END


def test_caches_are_per_model(client: anthropic.Anthropic) -> None:
    system = [text(1997, mark=True)]
    ask(client, system=system)
    assert usage(ask(client, system=system, model="claude-opus-5"))[1] == 0
    # An alias resolves to the same model (and cache) as its id.
    ask(client, system=system, model="claude-haiku-4-5-20251001", max_tokens=5)
    assert usage(ask(client, system=[text(4100, mark=True)], model="claude-haiku-4-5"))[1] == 0
    assert usage(ask(client, system=[text(4100, mark=True)], model="claude-haiku-4-5-20251001"))[1] == 4103


# -- isolation and concurrency ----------------------------------------------------------------


def test_workspaces_are_isolated() -> None:
    emu = Emulator(keys={"key-a": "wrkspc_a", "key-b": "wrkspc_b", "key-a2": "wrkspc_a"})
    system = [text(1997, mark=True)]
    with sdk(emu, "key-a") as a, sdk(emu, "key-b") as b, sdk(emu, "key-a2") as a2:
        ask(a, system=system)
        raw = b.messages.with_raw_response.create(
            model=MODEL, max_tokens=8, system=system, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.headers["anthropic-workspace-id"] == "wrkspc_b"
        assert usage(raw.parse())[1] == 0  # another workspace: miss
        assert usage(ask(a2, system=system))[1] == 2000  # another key of the same workspace: hit
    assert sorted(e["workspace"] for e in emu.state()["entries"]) == ["wrkspc_a", "wrkspc_b"]


def test_an_entry_is_readable_only_after_the_writer_response_began(emu: Emulator) -> None:
    system = [text(1997, mark=True)]
    gate = emu.faults.hold()
    results: dict[str, Any] = {}

    def writer() -> None:
        with sdk(emu) as client:
            results["writer"] = ask(client, system=system)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert emu.wait_in_flight(1)  # the writer has started, its response has not begun
        with sdk(emu) as client:
            results["early"] = ask(client, system=system)  # starts before the writer's response
    finally:
        gate.set()
        thread.join(10)
    assert usage(results["early"]) == (11, 0, 2000, 0)  # a miss: writes again
    assert usage(results["writer"]) == (11, 0, 2000, 0)
    with sdk(emu) as client:
        assert usage(ask(client, system=system))[1] == 2000  # after both began: a hit


# -- pre-warming with max_tokens 0 (docs/api-notes.md §2.5) -------------------------------------------


def test_prewarm_writes_and_returns_nothing(client: anthropic.Anthropic, emu: Emulator) -> None:
    system = [text(1997, mark=True)]
    warm = ask(client, system=system, max_tokens=0)
    assert warm.content == []
    assert warm.stop_reason == "max_tokens"
    assert usage(warm) == (11, 0, 2000, 0)
    assert warm.usage.output_tokens == 0
    assert usage(ask(client, system=system))[1] == 2000
    assert emu.bill()[0]["usage"]["output_tokens"] == 0


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking.type: 'enabled'"),
        (
            {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
            "output_config.format",
        ),
        ({"tools": [TOOL], "tool_choice": {"type": "any"}}, "tool_choice.type: 'any'"),
        ({"tools": [TOOL], "tool_choice": {"type": "tool", "name": "lookup"}}, "tool_choice.type: 'tool'"),
    ],
)
def test_prewarm_restrictions(client: anthropic.Anthropic, extra: dict[str, Any], fragment: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(client, max_tokens=0, **extra)
    assert fragment in err.value.body["error"]["message"]  # type: ignore[index]


def test_prewarm_refused_with_stream(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="stream: true"):
        ask(client, max_tokens=0, stream=True)


def test_prewarm_refused_in_a_batch(client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": "warm",
                "params": {"model": MODEL, "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]},
            }
        ]
    )
    [line] = list(client.messages.batches.results(batch.id))
    assert line.result.type == "errored"
    assert "not supported in Message Batches" in line.result.error.error.message  # type: ignore[union-attr]


# -- exact error strings (docs/api-notes.md §1.4) -----------------------------------------------------


def test_more_than_four_markers(client: anthropic.Anthropic) -> None:
    blocks = [text(5, mark=True) for _ in range(6)]
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(client, messages=[{"role": "user", "content": blocks}])
    assert err.value.body == {  # type: ignore[comparison-overlap]
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "A maximum of 4 blocks with cache_control may be provided. Found 6.",
        },
        "request_id": err.value.request_id,
    }


def test_1h_after_5m_names_the_offending_block(client: anthropic.Anthropic) -> None:
    blocks = [text(5, "5m"), text(5), text(5), text(5), text(5, "1h")]
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(client, messages=[{"role": "user", "content": blocks}])
    assert err.value.body["error"]["message"] == (  # type: ignore[index]
        "messages.0.content.4.cache_control.ttl: a ttl='1h' cache_control block must not come after a "
        "ttl='5m' cache_control block. Note that blocks are processed in the following order: "
        "`tools`, `system`, `messages`."
    )


def test_1h_after_5m_across_levels_and_no_ttl_counts_as_5m(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(client, system=[text(5, mark=True)], messages=[{"role": "user", "content": [text(5, "1h")]}])
    assert err.value.body["error"]["message"].startswith(  # type: ignore[index]
        "messages.0.content.0.cache_control.ttl: a ttl='1h'"
    )


def test_empty_text_block_with_a_marker(client: anthropic.Anthropic) -> None:
    blocks = [text(5), {"type": "text", "text": "", "cache_control": {"type": "ephemeral"}}]
    with pytest.raises(anthropic.BadRequestError) as err:
        ask(
            client,
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": blocks},
            ],
        )
    assert err.value.body["error"]["message"] == (  # type: ignore[index]
        "messages.2.content.1.text: cache_control cannot be set for empty text blocks"
    )


def test_marker_inside_tool_result_moves_to_the_parent(client: anthropic.Anthropic) -> None:
    inner = [{"type": "text", "text": words(1200), "cache_control": {"type": "ephemeral"}}]
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": inner}]},
    ]
    # "hi" 8 + tool_use (6 + 4) 10 + tool_result (3 + 1200 + 4) 1207 = 1225 written at the parent.
    assert usage(ask(client, messages=messages)) == (3, 0, 1225, 0)
    bad = [
        {"type": "text", "text": "tok", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "tok"},
    ]
    messages[2] = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": bad}]}
    with pytest.raises(
        anthropic.BadRequestError, match=r"messages\.2\.content\.0\.content\.0\.cache_control"
    ):
        ask(client, messages=messages)


# -- count_tokens equals billing ---------------------------------------------------------------


def test_count_tokens_equals_input_plus_read_plus_write_and_never_caches(
    client: anthropic.Anthropic, emu: Emulator
) -> None:
    request = _levels()
    counted = client.messages.count_tokens(model=MODEL, **request).input_tokens
    assert emu.state()["entries"] == []  # count_tokens never caches
    assert emu.bill() == []  # nor is it billed
    for _ in range(2):
        u = ask(client, **request).usage
        assert counted == u.input_tokens + (u.cache_read_input_tokens or 0) + (
            u.cache_creation_input_tokens or 0
        )
    assert counted == MESSAGES_END + 3
