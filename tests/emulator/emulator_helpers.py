"""Request builders shared by the emulator tests (see conftest for the token arithmetic)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

from cachewise.emulator import Emulator, EmulatorTransport

__all__ = ["MODEL", "sdk", "text", "words"]

MODEL = "claude-sonnet-5"  # minimum cacheable prompt 1,024 tokens; $2 / $2.50 / $4 / $0.20 / $10


def words(n: int) -> str:
    """``n`` tokens exactly: ``"tok"`` is one token and whitespace is free."""
    return " ".join(["tok"] * n)


def text(n: int, ttl: str | None = None, *, mark: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": words(n)}
    if ttl is not None or mark:
        block["cache_control"] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return block


def sdk(emulator: Emulator, key: str = "sk-test") -> anthropic.Anthropic:
    """An SDK client talking to ``emulator`` in process (no socket), without retries."""
    http = httpx2.Client(transport=EmulatorTransport(emulator))
    return anthropic.Anthropic(api_key=key, base_url="http://emulator.local", http_client=http, max_retries=0)
