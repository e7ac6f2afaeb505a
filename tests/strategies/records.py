"""Shared hypothesis strategies: token usage and call records, well-formed and hostile.

*Well-formed* values are what the API and a sane caller produce: token counts well inside BIGINT,
text without NUL or unpaired surrogates (any other code point may appear). *Hostile* values are
what the ledger must survive without losing or blocking anything: counts above BIGINT, unpaired
surrogates, NUL bytes, odd tags and ids. A hostile record has exactly one hostile field.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from cachewise.ledger import CallRecord
from cachewise.pricing import PriceBook
from cachewise.usage import Usage

__all__ = [
    "BIGINT_MAX",
    "HOSTILE_FIELDS",
    "call_records",
    "hostile_texts",
    "safe_texts",
    "tag_maps",
    "usages",
]

BIGINT_MAX = 2**63 - 1
T0 = datetime(2026, 3, 1, tzinfo=UTC)

#: Text any database column takes: no NUL, no surrogates; everything else allowed.
safe_texts = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=16
)


def hostile_texts() -> st.SearchStrategy[str]:
    """Text with an unpaired surrogate or a NUL byte somewhere in it."""
    bad = st.sampled_from(["\ud800", "\udfff", "\udc80", "\x00"])
    return st.builds(lambda a, b, c: a + b + c, safe_texts, bad, safe_texts)


def tag_maps(texts: st.SearchStrategy[str] = safe_texts) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(texts, texts, max_size=3)


def usages(*, hostile: bool = False) -> st.SearchStrategy[Usage]:
    """Usage with counts up to 10M tokens (sometimes all zero); ``hostile``: one count above BIGINT."""
    count = st.integers(0, 10_000_000)
    fields = {
        "input_tokens": count,
        "cache_read_input_tokens": count,
        "ephemeral_5m_input_tokens": count,
        "ephemeral_1h_input_tokens": count,
        "output_tokens": count,
        "web_search_requests": st.integers(0, 50),
    }
    normal = st.one_of(st.just(Usage()), st.fixed_dictionaries(fields).map(lambda kw: Usage(**kw)))
    if not hostile:
        return normal
    huge = st.integers(BIGINT_MAX + 1, 2**90)
    name = st.sampled_from(sorted(fields))
    return st.builds(lambda u, n, v: replace(u, **{n: v}), normal, name, huge)


#: The fields a hostile record may carry its one bad value in.
HOSTILE_FIELDS = ("usage", "tag_value", "tag_key", "message_id", "request_id", "model", "error_type")


@st.composite
def call_records(draw: st.DrawFn, book: PriceBook, *, hostile: bool = False) -> CallRecord:
    """A record priced with ``book`` (``claude-test-1`` is priced; other models get a cost_error).

    ``request_id`` is short and unique only within one draw: callers prefix it.
    """
    field = draw(st.sampled_from(HOSTILE_FIELDS)) if hostile else None
    bad = hostile_texts()
    usage = draw(usages(hostile=field == "usage"))
    tags = draw(tag_maps())
    if field == "tag_value":
        tags[draw(safe_texts)] = draw(bad)
    elif field == "tag_key":
        tags[draw(bad)] = draw(safe_texts)
    model = draw(bad) if field == "model" else draw(st.sampled_from(["claude-test-1", "claude-nope-9"]))
    return CallRecord.priced(
        usage=usage,
        model=model,
        started_at=T0 + timedelta(seconds=draw(st.integers(0, 86_400))),
        request_id=draw(bad) if field == "request_id" else "r" + draw(safe_texts),
        book=book,
        message_id=draw(bad) if field == "message_id" else draw(st.none() | safe_texts),
        error_type=draw(bad) if field == "error_type" else None,
        tags=tags,
    )
