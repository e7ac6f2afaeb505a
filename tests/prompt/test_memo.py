"""The message memo, its chained hashes and the salts' memo change no reading: a request read with
them warm reads as it does read afresh (hashes, sizes, kinds, rows, markers), and they stay bounded."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise import prompt as prompt_module
from cachewise.prompt import Prompt

from .test_canonical import EXTRA_BLOCKS, LEAVES, VALUES, reading
from .test_prompt import body

ROLES = st.sampled_from(["user", "assistant"])
MESSAGES = st.fixed_dictionaries(
    {"role": ROLES, "content": st.one_of(st.lists(EXTRA_BLOCKS, max_size=4), st.text(max_size=4))}
)


def cold(request: dict[str, Any], collapse: bool = True) -> tuple[Any, ...]:
    """The reading of ``request`` with every memo of the module empty (then emptied again)."""
    prompt_module._forget()
    try:
        return reading(Prompt(request, collapse_runs=collapse))
    finally:
        prompt_module._forget()


@settings(max_examples=300, deadline=None)
@given(st.lists(MESSAGES, min_size=1, max_size=6), st.booleans())
def test_an_agents_growing_conversation_reads_as_if_never_seen(
    turns: list[dict[str, Any]], collapse: bool
) -> None:
    """Each request repeats the one before and adds a message (the memo's case): every one of them,
    read with the memos warm from the earlier ones, reads as it does read afresh."""
    requests = [body(messages=copy.deepcopy(turns[: k + 1])) for k in range(len(turns))]
    expected = [cold(r, collapse) for r in requests]
    for request, want in zip(requests, expected, strict=True):
        assert reading(Prompt(request, collapse_runs=collapse)) == want
        assert reading(Prompt(request, collapse_runs=collapse)) == want  # every message a hit now


@settings(max_examples=200, deadline=None)
@given(MESSAGES, st.lists(MESSAGES, min_size=1, max_size=3), st.lists(MESSAGES, min_size=1, max_size=3))
def test_one_message_after_different_histories_chains_from_each(
    shared: dict[str, Any], first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    """The same message at the same index after other earlier messages: its hashes follow each history."""
    if len(first) != len(second):
        second = (second * 3)[: len(first)]
    a = body(messages=[*copy.deepcopy(first), copy.deepcopy(shared)])
    b = body(messages=[*copy.deepcopy(second), copy.deepcopy(shared)])
    want_a, want_b = cold(a), cold(b)
    for _ in range(2):
        assert reading(Prompt(a)) == want_a
        assert reading(Prompt(b)) == want_b


def test_a_message_hit_is_the_same_segment_and_its_hashes_are_chained_once() -> None:
    prompt_module._forget()
    request = body()
    first = Prompt(request)
    kept = dict(prompt_module._MESSAGES)
    assert kept, "list-content messages without markers are kept"
    second = Prompt(copy.deepcopy(request))  # equal values, other objects: found by their JSON
    assert second.hashes == first.hashes
    assert all(prompt_module._MESSAGES[k] is seg for k, seg in kept.items())
    assert all(len(seg.chain) == 1 for seg in kept.values())


def test_messages_that_cannot_be_named_by_their_json_are_not_kept() -> None:
    """NaN is written as null by orjson, like None: a message holding either is read afresh; so is
    one carrying a caller's marker (its markers name paths) and a string content."""
    prompt_module._forget()
    none = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"x": None}}],
    }
    nan = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"x": float("nan")}}],
    }
    marked = {
        "role": "user",
        "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
    }
    string = {"role": "user", "content": "hello"}
    for message in (none, nan, marked, string):
        Prompt(body(messages=[message]))
    assert prompt_module._MESSAGES == {}
    assert Prompt(body(messages=[none])).hashes[-1] != Prompt(body(messages=[nan])).hashes[-1]


def test_the_memos_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    prompt_module._forget()
    monkeypatch.setattr(prompt_module, "_MESSAGES_MAX", 4)
    monkeypatch.setattr(prompt_module, "_CHAIN_MAX", 2)
    monkeypatch.setattr(prompt_module, "_SALTS_MAX", 3)
    monkeypatch.setattr(prompt_module, "_POSITIONS_MAX", 5)
    shared = {"role": "user", "content": [{"type": "text", "text": "same"}]}
    for i in range(20):
        history = [{"role": "user", "content": [{"type": "text", "text": f"turn {i}"}]}]
        request = body(
            messages=[*history, {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}, shared]
        )
        request["thinking"] = {"type": "enabled", "budget_tokens": 1024 + i}
        assert reading(Prompt(request)) == cold(request)
        assert len(prompt_module._MESSAGES) <= 4
        assert all(len(seg.chain) <= 2 for seg in prompt_module._MESSAGES.values())
        assert len(prompt_module._SALTS) <= 3
        assert len(prompt_module._POSITIONS) <= 5
    prompt_module._forget()


def test_a_repeated_position_is_the_one_made_before_and_equals_a_fresh_one() -> None:
    prompt_module._forget()
    tools = [{"name": f"t{i}", "description": "d", "input_schema": {"type": "object"}} for i in range(3)]
    system = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    request = body(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    request["tools"], request["system"] = tools, system
    first = Prompt(request).positions
    again = Prompt(copy.deepcopy(request)).positions
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert first == cold(request)[-1]
    assert [p.path for p in first] == [
        "tools.0",
        "tools.1",
        "tools.2",
        "system.0",
        "system.1",
        "messages.0.content.0",
    ]
    # the same system blocks after fewer tools: other hashes, and paths counted from their own start
    fewer = {**request, "tools": tools[:1]}
    assert [p.path for p in Prompt(fewer).positions][1:3] == ["system.0", "system.1"]
    prompt_module._forget()


SETTINGS = st.one_of(
    st.none(),
    VALUES,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["auto", "any", "tool", "none"])},
        optional={"disable_parallel_tool_use": LEAVES, "name": st.text(max_size=3)},
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    SETTINGS,
    st.one_of(
        SETTINGS,
        st.fixed_dictionaries(
            {"type": st.sampled_from(["enabled", "disabled", "adaptive"])}, optional={"budget_tokens": LEAVES}
        ),
    ),
    st.one_of(SETTINGS, st.fixed_dictionaries({}, optional={"effort": LEAVES})),
    st.one_of(st.none(), LEAVES),
)
def test_the_salts_memo_changes_no_hash(choice: Any, thinking: Any, output: Any, speed: Any) -> None:
    """Settings of every shape (NaN, 1 and 1.0, True and 1, tuples, nested values) salt the hashes
    as they do read afresh."""
    request = body()
    for key, value in (
        ("tool_choice", choice),
        ("thinking", thinking),
        ("output_config", output),
        ("speed", speed),
    ):
        if value is not None:
            request[key] = value
    want = cold(request)
    assert reading(Prompt(request)) == want
    assert reading(Prompt(request)) == want


def _long(seed: str, size: int = 20_000) -> str:
    return (seed + " ") * (size // (len(seed) + 1))


def _large_blocks_request(text: str, marked: bool, tool_text: str) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if marked:
        block["cache_control"] = {"type": "ephemeral"}
    request = body(
        messages=[
            {"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": text}}]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": [{"type": "text", "text": tool_text}, {"type": "text", "text": "q"}]},
        ]
    )
    request["system"] = [{"type": "text", "text": "short"}, block]
    request["tools"] = [{"name": "big", "description": tool_text, "input_schema": {"type": "object"}}]
    return request


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=8), st.booleans(), st.text(min_size=1, max_size=8), st.booleans())
def test_large_blocks_read_warm_as_they_read_afresh(
    seed: str, marked: bool, tool_seed: str, collapse: bool
) -> None:
    """A long system block, tool and content block (kept apart from the small ones): read again,
    from other objects of equal value, they read as afresh, markers included."""
    request = _large_blocks_request(_long(seed), marked, _long(tool_seed, 6_000))
    want = cold(request, collapse)
    for _ in range(3):
        assert reading(Prompt(copy.deepcopy(request), collapse_runs=collapse)) == want


def _large_keys() -> list[bytes]:
    """The keys (orjson's bytes of each block) the large-block memo holds."""
    return [key for key, _entry in prompt_module._LARGE.values()]


def test_a_large_block_is_kept_and_a_changed_one_is_read_again() -> None:
    prompt_module._forget()
    request = _large_blocks_request(_long("policy"), True, _long("schema", 6_000))
    first = Prompt(request)
    assert len(prompt_module._LARGE) == 4  # the system block, the tool, the document, the long text
    system_key = next(k for k in _large_keys() if b"policy" in k and b"cache_control" in k)
    again = Prompt(copy.deepcopy(request))
    assert again.hashes == first.hashes
    assert again.markers == first.markers
    # one character changed near the end: not the kept entry, other hashes from that block on
    changed = copy.deepcopy(request)
    changed["system"][1]["text"] = changed["system"][1]["text"][:-2] + "X "
    other = Prompt(changed)
    assert system_key in _large_keys()  # the first one is still kept
    assert other.hashes == cold(changed)[0]
    start = first.level_ends["tools"] + 2  # the long system block's position
    assert other.hashes[:start] == first.hashes[:start]
    assert other.hashes[start] != first.hashes[start]
    prompt_module._forget()


def test_large_blocks_with_null_are_not_kept_and_the_memo_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prompt_module._forget()
    nan = {"type": "tool_use", "id": "t", "name": "f", "input": {"x": float("nan"), "pad": _long("p")}}
    none = {"type": "tool_use", "id": "t", "name": "f", "input": {"x": None, "pad": _long("p")}}
    for block in (nan, none):
        Prompt(body(messages=[{"role": "assistant", "content": [block]}]))
    assert prompt_module._LARGE == {}
    nan_body = body(messages=[{"role": "assistant", "content": [nan]}])
    none_body = body(messages=[{"role": "assistant", "content": [none]}])
    assert Prompt(nan_body).hashes[-1] != Prompt(none_body).hashes[-1]

    monkeypatch.setattr(prompt_module, "_LARGE_MAX", 3)
    monkeypatch.setattr(prompt_module, "_LARGE_MAX_BYTES", 50_000)
    for i in range(12):
        request = body()
        request["system"] = [{"type": "text", "text": _long(f"rules {i}")}]
        assert reading(Prompt(request)) == cold(request)
        Prompt(request)
        assert len(prompt_module._LARGE) <= 3
        assert sum(map(len, _large_keys())) <= 50_000
    prompt_module._forget()


def test_large_blocks_that_share_a_sample_are_told_apart_by_their_bytes() -> None:
    """The large-block memo finds a kept block by its length and three 64-byte slices, then compares
    the whole bytes: a block that differs from a kept one only between those slices (same sample) is
    read as afresh, and takes the slot; the first one, read again, is read afresh too."""
    prompt_module._forget()
    text = _long("rules")
    quarter = len(text) // 4
    first = body(system=[{"type": "text", "text": text}])
    second = body(system=[{"type": "text", "text": text[:quarter] + "Z" + text[quarter + 1 :]}])
    one, two = (prompt_module.orjson_bytes(r["system"][0]) for r in (first, second))
    assert one is not None and two is not None and one != two
    assert prompt_module._sample(one) == prompt_module._sample(two)
    want = {id(first): cold(first), id(second): cold(second)}  # each read with every memo emptied
    for request in (first, second, first, second):
        warm = Prompt(copy.deepcopy(request))
        assert len(prompt_module._LARGE) == 1  # one slot: the block last read holds it
        assert reading(warm) == want[id(request)]
    assert Prompt(first).hashes != Prompt(second).hashes
    prompt_module._forget()
