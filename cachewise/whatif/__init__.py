"""What caching would save on your own traffic, before you adopt it (docs/why.md, "What if")."""

from __future__ import annotations

from .requests import STRATEGIES, Outcome, TimedRequest, apply_strategy, read_requests, replay

__all__ = ["STRATEGIES", "Outcome", "TimedRequest", "apply_strategy", "read_requests", "replay"]
