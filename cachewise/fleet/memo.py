"""The token memo shared with a fleet: :class:`FleetMemo`, a ``TokenMemo`` that publishes.

Every count this process makes and every minimum it learns is kept locally as before (the memo's
SQLite file) and published; counts and minimums made elsewhere are applied with the parent's own
methods (``put``, ``learn_minimum``), so they are never published back.
"""

from __future__ import annotations

from pathlib import Path

from ..tokens import LearnedMinimum, TokenMemo
from .events import Event
from .hub import Fleet

__all__ = ["FleetMemo"]


class FleetMemo(TokenMemo):
    """A :class:`TokenMemo` at ``path`` (``None``: in memory) whose new facts go to ``fleet``."""

    def __init__(self, path: str | Path | None, fleet: Fleet) -> None:
        super().__init__(path)
        self.fleet = fleet

    def put(self, namespace: str, model: str, prefix_hash: str, tokens: int) -> None:
        known = self.get(namespace, model, prefix_hash)
        super().put(namespace, model, prefix_hash, tokens)
        if known != tokens:
            self.fleet.publish(["c", namespace, model, prefix_hash, tokens])

    def learn_minimum(
        self, namespace: str, model: str, *, above: int | None = None, at_most: int | None = None
    ) -> LearnedMinimum:
        old = self.minimum(namespace, model)
        new = super().learn_minimum(namespace, model, above=above, at_most=at_most)
        if new != old:
            self.fleet.publish(["m", namespace, model, above, at_most])
        return new

    def apply(self, event: Event) -> None:
        """Apply a count (``c``) or a minimum (``m``) learned elsewhere."""
        if event[0] == "c":
            _, namespace, model, prefix_hash, tokens = event
            if self.get(namespace, model, prefix_hash) != tokens:
                TokenMemo.put(self, str(namespace), str(model), str(prefix_hash), int(tokens))
        elif event[0] == "m":
            _, namespace, model, above, at_most = event
            TokenMemo.learn_minimum(
                self,
                str(namespace),
                str(model),
                above=None if above is None else int(above),
                at_most=None if at_most is None else int(at_most),
            )
        else:
            raise ValueError(f"not a memo event: {event[:3]!r}")
