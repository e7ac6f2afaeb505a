"""The fast ways of writing canonical bytes (orjson, the C encoder) give the general path's bytes,
and the prefix hashes of a fixed request keep their values (the ledger stores them)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise import prompt as prompt_module
from cachewise.prompt import Prompt, canonical_json

from .test_prompt import body

KEYS = st.one_of(
    st.sampled_from(
        ["type", "text", "input", "input_schema", "cache_control", "content", "source", "data", "b", "a"]
    ),
    st.text(max_size=3),
)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["\x00", "\x1f", "é", "\u2028", "\u00a0 x", "\\", '"']),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5), st.tuples(inner, inner)
    ),
    max_leaves=25,
)
BLOCKS = st.one_of(
    st.dictionaries(KEYS, VALUES, max_size=6),
    st.dictionaries(st.one_of(st.integers(0, 3), st.booleans()), LEAVES, max_size=3),
    VALUES,
)


def general(value: Any) -> bytes | str:
    """The canonical bytes by the general path alone (no fast path), or the error's type."""
    try:
        return prompt_module._ENCODER.encode(prompt_module._canon(value, False)).encode()
    except Exception as exc:
        return type(exc).__name__


def written(value: Any) -> bytes | str:
    try:
        return canonical_json(value)
    except Exception as exc:
        return type(exc).__name__


def fast_path_applies(value: Any) -> bool:
    """Whether the general path is the reference: the flat blocks' path has always kept a
    ``cache_control`` inside ``input`` and written keys that are not strings its own way."""
    if not isinstance(value, dict):
        return True
    return not isinstance(value.get("input"), dict | list | tuple) and all(type(k) is str for k in value)


@settings(max_examples=1500, deadline=None)
@given(BLOCKS)
def test_fast_paths_write_the_general_paths_bytes(value: Any) -> None:
    if fast_path_applies(value):
        assert written(value) == general(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, LEAVES, max_size=5), st.dictionaries(st.text(max_size=3), VALUES, max_size=4))
def test_an_input_keeps_its_order_and_the_envelope_is_sorted(
    envelope: dict[str, Any], given_input: Any
) -> None:
    block = {**envelope, "input": given_input}
    block.pop("cache_control", None)
    expected = prompt_module._ENCODER.encode({k: block[k] for k in sorted(block)}).encode()
    assert written(block) == expected


def test_prefix_hashes_keep_their_values() -> None:
    """Values computed before the fast paths existed: a change here breaks every stored prefix hash."""
    prompt = Prompt(body())
    assert prompt.family == "992b2f3d17d756f901588bc7caa00ad31a387e1120ef9818d484eb6a248180e6"
    assert [h[:16] for h in prompt.hashes] == [
        "d13d2584813d1e6e",
        "5b2630610c7f984d",
        "6181655903e35df0",
        "992b2f3d17d756f9",
        "f90332a8415fb52b",
        "b14764217179c55d",
        "c06dbd357b10c6b5",
        "84061b5f29f74e0e",
        "79e3518aba075749",
        "9e7adc684641e2f0",
    ]


def test_positions_made_on_demand_match_the_sequences() -> None:
    for collapse in (True, False):
        prompt = Prompt(body(), collapse_runs=collapse)
        positions = prompt.positions
        assert list(prompt.hashes) == [p.prefix_hash for p in positions]
        assert list(prompt.kinds) == [p.kind for p in positions]
        assert list(prompt.levels) == [p.level for p in positions]
        assert [prompt.plannable(i) for i in range(len(prompt))] == [p.plannable for p in positions]
        assert [prompt.nbytes(i) for i in range(len(prompt))] == [p.nbytes for p in positions]
        assert prompt.position(3) is positions[3]
        assert dataclasses.replace(positions[-1]) == positions[-1]


def reading(prompt: Prompt) -> tuple[Any, ...]:
    n = len(prompt)
    return (
        prompt.hashes,
        prompt.kinds,
        prompt.markable,
        prompt.markers,
        prompt.family,
        prompt.level_ends,
        [prompt.nbytes(i) for i in range(n)],
        [prompt.cum_text(i) for i in range(n)],
        prompt.positions,
    )


EXTRA_BLOCKS = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image", "document", "tool_result", "tool_use", "thinking"])},
        optional={
            "text": st.text(max_size=5),
            "content": VALUES,
            "source": VALUES,
            "input": VALUES,
            "cache_control": st.sampled_from([{"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}]),
            "citations": st.sampled_from([{"enabled": True}, {"enabled": False}]),
        },
    ),
    VALUES,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(EXTRA_BLOCKS, max_size=4), min_size=1, max_size=4), st.booleans())
def test_the_block_memo_changes_no_reading(turns: list[list[Any]], collapse: bool) -> None:
    """A request read with every block memoised reads as it does with none (hashes, sizes, markers)."""
    request = body()
    request["messages"] += [{"role": "user", "content": blocks} for blocks in turns]
    prompt_module._forget()
    cold = reading(Prompt(request, collapse_runs=collapse))
    assert reading(Prompt(request, collapse_runs=collapse)) == cold  # warm: the blocks seen just now


def test_blocks_whose_json_orjson_writes_alike_are_told_apart() -> None:
    """NaN and None both come out of orjson as null; the memo keeps neither, so each reads its own."""
    plain = {"type": "tool_use", "id": "t", "name": "f", "input": {"x": None}}
    nan = {"type": "tool_use", "id": "t", "name": "f", "input": {"x": float("nan")}}
    first = Prompt(body(messages=[{"role": "assistant", "content": [plain]}])).hashes
    second = Prompt(body(messages=[{"role": "assistant", "content": [nan]}])).hashes
    assert first[-1] != second[-1]
    assert canonical_json(nan) == b'{"id":"t","input":{"x":NaN},"name":"f","type":"tool_use"}'
