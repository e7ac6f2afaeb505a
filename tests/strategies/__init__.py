"""Shared hypothesis strategies, one module for every test that needs them.

``bodies``: request bodies, traffic histories, token counts, ledger calls; ``records``: token usage
and call records, well-formed and hostile. Import them as ``from tests.strategies import ...``.
"""

from __future__ import annotations

from tests.strategies.bodies import (
    MARK_1H,
    MARK_5M,
    assistant_content,
    history,
    ledger_calls,
    markable_blocks,
    request_bodies,
    request_token_counts,
    text_block,
    token_counts,
    user_content,
    words,
)
from tests.strategies.records import (
    BIGINT_MAX,
    HOSTILE_FIELDS,
    call_records,
    hostile_texts,
    safe_texts,
    tag_maps,
    usages,
)

__all__ = [
    "BIGINT_MAX",
    "HOSTILE_FIELDS",
    "MARK_1H",
    "MARK_5M",
    "assistant_content",
    "call_records",
    "history",
    "hostile_texts",
    "ledger_calls",
    "markable_blocks",
    "request_bodies",
    "request_token_counts",
    "safe_texts",
    "tag_maps",
    "text_block",
    "token_counts",
    "usages",
    "user_content",
    "words",
]
