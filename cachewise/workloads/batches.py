"""Batch traffic: one Message Batches create body of requests that share prefixes at two depths.

:func:`batch_jobs` returns the body of ``client.messages.batches.create``: every request shares a
long labelling guide (the system prompt); groups of them share a reference document; each has a
question of its own; a few carry no document. Written as a user would, with no ``cache_control``.
Seeded: the same arguments give the same body.
"""

from __future__ import annotations

import random
from typing import Any

from .text import words

__all__ = ["batch_jobs"]

MODEL = "claude-sonnet-4-6"


def batch_jobs(scale: int, seed: int = 14, *, groups: int = 4, per_group: int = 6) -> dict[str, Any]:
    """``groups`` documents, ``per_group * scale`` requests on each, plus ``2 * scale`` without one."""
    rng = random.Random(seed)
    guide = "Label each record as billing, bug, feature or other, with a reason. " + words(rng, 1500)
    requests: list[dict[str, Any]] = []

    def add(custom_id: str, content: list[dict[str, Any]]) -> None:
        params = {
            "model": MODEL,
            "max_tokens": 24,
            "system": guide,
            "messages": [{"role": "user", "content": content}],
        }
        requests.append({"custom_id": custom_id, "params": params})

    for g in range(groups):
        document = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": words(rng, 2500)},
            "title": f"reference {g}",
        }
        for j in range(per_group * scale):
            add(f"g{g}-{j}", [document, {"type": "text", "text": f"Record {g}.{j}: " + words(rng, 30)}])
    for j in range(2 * scale):
        add(f"solo-{j}", [{"type": "text", "text": f"Record {j}: " + words(rng, 30)}])
    return {"requests": requests}
