"""Constants of the Claude API's prompt cache that both the planner and the emulator rely on.

A leaf: it imports nothing from cachewise, so the planner (``cachewise.prompt``,
``cachewise.planner``) and the emulator (the independent oracle) can share these without
sharing code. Each value is the API's, with where it is documented (the public pages are
listed in docs/emulator.md):

* the prompt-caching page: "up to 4 cache breakpoints"; the lookback "checks at most 20
  positions per breakpoint, counting the breakpoint itself as the first"; "a run of
  consecutive ``tool_use`` blocks counts as one position, and so does a run of consecutive
  ``tool_result`` blocks"; thinking blocks "cannot be cached directly with
  ``cache_control``"; lifetimes of 5 minutes (the default) and 1 hour;
* the SDK's ``CacheControlEphemeralParam``: ``ttl: Literal["5m", "1h"]``;
* the token-counting page: ``count_tokens`` refuses server tools (web search, web fetch,
  code execution, tool search) and the MCP connector;
* the errors page: request bodies above 32 MB (Messages, ``count_tokens``) and 256 MB
  (Message Batches) are refused with 413.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "COUNT_TOKENS_REFUSED_TOOL_PREFIXES",
    "LOOKBACK",
    "MAX_BATCH_BYTES",
    "MAX_BODY_BYTES",
    "MAX_MARKERS",
    "RUN_BLOCK_TYPES",
    "TTLS",
    "TTL_SECONDS",
    "UNMARKABLE_BLOCK_TYPES",
    "Ttl",
]

Ttl = Literal["5m", "1h"]
TTLS: Final[tuple[Ttl, ...]] = ("5m", "1h")
TTL_SECONDS: Final[dict[Ttl, int]] = {"5m": 300, "1h": 3600}

MAX_MARKERS: Final = 4
LOOKBACK: Final = 20

RUN_BLOCK_TYPES: Final = frozenset({"tool_use", "tool_result"})
UNMARKABLE_BLOCK_TYPES: Final = frozenset({"thinking", "redacted_thinking"})

COUNT_TOKENS_REFUSED_TOOL_PREFIXES: Final = (
    "web_search",
    "web_fetch",
    "code_execution",
    "tool_search",
    "mcp",
)

MAX_BODY_BYTES: Final = 32 * 1024 * 1024
MAX_BATCH_BYTES: Final = 256 * 1024 * 1024
