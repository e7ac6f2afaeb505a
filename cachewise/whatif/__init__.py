"""What caching would save on your own traffic, before you adopt it (docs/why.md, "What if")."""

from __future__ import annotations

from .ledger import LEDGER_STRATEGIES, Recorded, marks, recorded_calls, replay_recorded
from .planned import RecordedCounter, RecordedPlanner, RecordedPrompt
from .requests import STRATEGIES, Outcome, TimedRequest, apply_strategy, read_requests, replay

__all__ = [
    "LEDGER_STRATEGIES",
    "STRATEGIES",
    "Outcome",
    "Recorded",
    "RecordedCounter",
    "RecordedPlanner",
    "RecordedPrompt",
    "TimedRequest",
    "apply_strategy",
    "marks",
    "read_requests",
    "recorded_calls",
    "replay",
    "replay_recorded",
]
