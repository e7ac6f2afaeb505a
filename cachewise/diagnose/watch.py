"""What the tracker asks before and after each request: :class:`MissWatch`.

``before`` reads the body about to be sent as positions (:class:`~cachewise.prompt.Prompt`),
finds the earlier request it continues and, when diagnostics are on and that request's message id
is known, returns the body with ``diagnostics.previous_message_id`` added (the API then answers
``diagnostics.cache_miss_reason``). ``after`` diagnoses the billed usage locally and keeps the
API's reason. Nothing here keeps prompt text: hashes, levels, marker positions and token counts.
An API that refuses the parameter (HTTP 400 naming ``diagnostics``) turns it off for the watch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ..api_rules import Ttl
from ..pricing import PriceBook
from ..prompt import Prompt
from ..usage import Usage
from .api import ApiReason, read_api_reason
from .history import PrefixHistory, Seen
from .local import Diagnosis, diagnose
from .replay import Replay, Sizes, points

__all__ = ["Look", "MissWatch"]


@dataclass(slots=True)
class Look:
    """One request as the watch saw it before sending: itself, the one it continues, what was sent."""

    seen: Seen
    previous: Seen | None
    sent_diagnostics: bool = False


class MissWatch:
    """The miss diagnosis of one tracker (``diagnostics``: send the API parameter)."""

    def __init__(self, *, diagnostics: bool = True, book: PriceBook | None = None) -> None:
        self.diagnostics = diagnostics
        self.refused = False
        self.history = PrefixHistory()
        self._book = book
        self.sizes = Sizes()
        self._minimums: dict[tuple[str, date], int] = {}

    def replay(
        self,
        look: Look,
        usage: Usage,
        counted: Mapping[int, int] | None = None,
        added: Collection[int] = (),
        memoised: Collection[int] = (),
    ) -> Replay:
        """What ``cachewise whatif --since`` replays for this call (:mod:`.replay`); ``counted``:
        prefix sizes the planner counted before sending, by position (``None``: not planned);
        ``added``: the positions the planner marked; ``memoised``: the counted positions its
        memo knew before it planned."""
        return points(look.seen, usage, self.sizes, counted, added, self._minimum(look.seen), memoised)

    def _minimum(self, seen: Seen) -> int:
        """The model's minimum cacheable prompt on the request's UTC day (the price book's minimums
        go by the day, as the planner reads them), looked up once per model and day."""
        at = seen.started_at
        if at.tzinfo is None:  # the book refuses it: no minimum, as before
            return 0
        key = (seen.model, at.astimezone(UTC).date())
        found = self._minimums.get(key)
        if found is None:
            try:
                book = self._book if self._book is not None else PriceBook.default()
                found = book.min_cache_tokens(seen.model, seen.started_at).tokens
            except Exception:  # an unknown model: no minimum to hold it to
                found = 0
            if len(self._minimums) >= 256:
                self._minimums.clear()
            self._minimums[key] = found
        return found

    def before(
        self,
        body: Mapping[str, Any],
        at: datetime,
        read: Prompt | None = None,
        added: Sequence[tuple[int, Ttl]] = (),
    ) -> tuple[Look, Mapping[str, Any]]:
        """The :class:`Look` at ``body``, and the body to send (``body``, or a copy with diagnostics).

        ``read``: ``body`` already read as positions before the markers ``added`` were put on it (the
        planner's reading, :attr:`cachewise.planner.Plan.prompt`): its hashes serve, unread again.
        """
        seen = Seen.of(read, at, added) if read is not None else Seen.of(Prompt(body), at)
        previous = self.history.previous(seen)
        self.history.add(seen)
        look = Look(seen, previous)
        if not self.diagnostics or self.refused or "diagnostics" in body:
            return look, body
        named = self.history.previous(seen, with_message_id=True)
        if named is None or named.message_id is None:
            return look, body
        look.sent_diagnostics = True
        return look, {**body, "diagnostics": {"previous_message_id": named.message_id}}

    def refuses(self, look: Look | None, status: int, content: bytes) -> bool:
        """Whether this 400 refused the diagnostics parameter we added (then it stays off)."""
        refused = look is not None and look.sent_diagnostics and status == 400 and b"diagnostics" in content
        if refused:
            self.refused = True
        return refused

    def after(
        self, look: Look, usage: Usage, *, message: Any, message_id: str | None, at: datetime
    ) -> tuple[Diagnosis | None, ApiReason | None]:
        """Diagnose the billed ``usage`` (the response arrived at ``at``); remember what was cached."""
        seen = look.seen
        seen.message_id = message_id
        seen.finished_at = at
        seen.written_tokens = usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        seen.total_tokens = usage.prompt_tokens
        minimum = self._minimum(seen)
        local = diagnose(seen, look.previous, usage, at=seen.started_at, min_tokens=minimum)
        return local, read_api_reason(message)
