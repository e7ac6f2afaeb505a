"""What the ledger may store: hashes and counts by default, text only on request, keys never.

Prompt text is kept only when the ledger was opened with ``store_prompts=True``.
Whatever free text is stored (prompts, error types, pricing errors, tags) passes
through :func:`redact` first, which removes anything shaped like an Anthropic API key
or a bearer token, so a key pasted into a prompt or an error message never lands on disk.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "redact"]

REDACTED = "[REDACTED]"

_SECRET = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{8,}"  # Anthropic API and admin keys
    r"|(?i:bearer)\s+[A-Za-z0-9_\-.=]{16,}"  # an Authorization header value
    r"|(?i:x-api-key)\s*[:=]\s*\S+"
)


def redact(text: str | None) -> str | None:
    """``text`` with API keys and bearer tokens replaced by ``[REDACTED]``."""
    if text is None:
        return None
    return _SECRET.sub(REDACTED, text)
