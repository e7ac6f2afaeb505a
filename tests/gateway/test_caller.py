"""Reading the caller: the key's id (never the key) and the tags header."""

from __future__ import annotations

import hashlib

import pytest

from cachewise.budget.config import KEY_TAG
from cachewise.gateway import TagHeaderError, caller_of, parse_tags_header


def test_key_id_is_the_start_of_its_sha256() -> None:
    caller = caller_of({"x-api-key": "sk-ant-xyz"})
    assert caller.key_id == hashlib.sha256(b"sk-ant-xyz").hexdigest()[:16]
    assert caller.tags == {KEY_TAG: caller.key_id}
    assert "sk-ant-xyz" not in repr(caller)


def test_no_key_no_key_tag() -> None:
    assert caller_of({"x-cachewise-tags": "a=1"}).tags == {"a": "1"}
    assert caller_of({"authorization": "Basic abc"}).key_id is None


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("feature=search,team=a", {"feature": "search", "team": "a"}),
        (" feature = search , ,team=a ", {"feature": "search", "team": "a"}),
        ("empty=", {"empty": ""}),
        ("url=a=b", {"url": "a=b"}),
        ("", {}),
    ],
)
def test_tags_header(header: str, tags: dict[str, str]) -> None:
    assert parse_tags_header(header) == tags


@pytest.mark.parametrize("header", ["feature", "=search", f"{KEY_TAG}=abc", "k=" + "v" * 2000])
def test_bad_tags_header_names_the_pair(header: str) -> None:
    with pytest.raises(TagHeaderError) as caught:
        parse_tags_header(header)
    assert "x-cachewise-tags" in str(caught.value)
    assert caught.value.pair == header
