"""serialised: the planned body's bytes are those :mod:`json` writes, whichever encoder wrote them."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise.integrations.tracker import serialised

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _reference(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _json, max_size=5))
def test_the_bytes_are_those_json_writes(body: dict[str, Any]) -> None:
    assert serialised(body) == _reference(body)


def test_a_long_planned_body_is_written_as_json_writes_it() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32,
        "temperature": 0.7,
        "system": [
            {"type": "text", "text": 'é ✓ \u2028 "q" \\ \n\t' * 2000, "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "u"},
        "top_k": 2**63,  # beyond 64 bits signed: orjson refuses it, json writes it
    }
    assert serialised(body) == _reference(body)


@pytest.mark.parametrize("bad", [math.nan, math.inf, {1, 2}, "\ud800"])
def test_what_json_refuses_is_refused(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        serialised({"model": "m", "x": bad})
