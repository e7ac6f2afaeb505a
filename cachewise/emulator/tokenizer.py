"""A deterministic tokenizer of our own, used identically by count_tokens and billing.

It is not Claude's tokenizer (that one is not public); it is a fixed, documented rule
so that tests can derive token counts by hand:

* a run of ASCII letters is split into pieces of at most 4 letters, each one token
  (``"tok"`` = 1, ``"word"`` = 1, ``"hello"`` = 2);
* a run of digits is split into pieces of at most 3 digits, each one token;
* every other character that is not whitespace is one token (punctuation, each
  non-ASCII character, each emoji code point);
* whitespace is free.

The per-block overheads that turn a request into token counts live in
:mod:`cachewise.emulator.positions` (see docs/emulator.md).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

__all__ = ["count_json", "count_payload", "count_text", "count_text_reference"]

_TOKEN = re.compile(r"[A-Za-z]{1,4}|[0-9]{1,3}|[^\sA-Za-z0-9]")

# Binary payloads (base64 images, PDFs) cost one token per this many characters.
PAYLOAD_CHARS_PER_TOKEN = 750


def count_text(text: str) -> int:
    """Tokens in ``text`` by the rule in the module docstring."""
    if not text:
        return 0
    if len(text) >= _MEMO_MIN_CHARS:
        return _count_memo(text)
    return _count(text)


def count_text_reference(text: str) -> int:
    """The rule as one regular expression (slow; the fast path is tested against it)."""
    return len(_TOKEN.findall(text))


def _count(text: str) -> int:
    # Whitespace-separated words; pure ASCII letter or digit words need no regex.
    total = 0
    for word in text.split():
        if word.isascii():
            if word.isalpha():
                total += (len(word) + 3) // 4
                continue
            if word.isdigit():
                total += (len(word) + 2) // 3
                continue
        total += len(_TOKEN.findall(word))
    return total


# Long texts (system prompts, documents) repeat across requests: memoise them.
_MEMO_MIN_CHARS = 256
_count_memo = lru_cache(maxsize=2048)(_count)


def count_json(value: Any) -> int:
    """Tokens of a JSON value serialised compactly, keeping its key order."""
    return count_text(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def count_payload(data: str) -> int:
    """Tokens of an opaque payload (base64 data or a URL): 1 per 750 characters, at least 1."""
    return max(1, -(-len(data) // PAYLOAD_CHARS_PER_TOKEN))
