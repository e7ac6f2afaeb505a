"""One normalised, additive token usage, built from every shape the API uses.

The API reports usage in three places: the ``usage`` object of a Message (JSON
or SDK model), ``message_start`` / ``message_delta`` stream events, and batch
result lines. This module is the single place those shapes are translated.

Rules (api-sheet §3):

* ``input_tokens`` excludes cached tokens; the three counters are additive.
* ``cache_creation_input_tokens`` is the sum of the 5m and 1h writes. When the
  ``cache_creation`` split is missing, every write is counted as 5m and the
  usage is flagged ``ttl_split_missing``. When the split sums to less than the
  total (a server-tool loop), the excess is counted as 5m.
* Stream usage is *replaced*, never added: ``message_start`` gives the start,
  each ``message_delta`` overwrites the counts it carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .errors import UsageError

__all__ = ["StreamUsage", "Usage"]


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(key, f"expected a whole number of tokens, got {value!r}")
    if value < 0:
        raise UsageError(key, f"token counts cannot be negative, got {value}")
    return value


def _as_mapping(obj: Any) -> Mapping[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        result = dump()
        if isinstance(result, Mapping):
            return result
    raise UsageError("<root>", f"cannot read usage from {type(obj).__name__}")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one billed request, with the API's own field names."""

    input_tokens: int = 0
    cache_read_input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0
    output_tokens: int = 0
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    code_execution_hours: Decimal = field(default=Decimal(0))
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    ttl_split_missing: bool = False

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "cache_read_input_tokens",
            "ephemeral_5m_input_tokens",
            "ephemeral_1h_input_tokens",
            "output_tokens",
            "web_search_requests",
            "web_fetch_requests",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(name, f"expected a non-negative whole number, got {value!r}")
        if self.code_execution_hours < 0:
            raise UsageError("code_execution_hours", "cannot be negative")

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.ephemeral_5m_input_tokens + self.ephemeral_1h_input_tokens

    @property
    def prompt_tokens(self) -> int:
        """Every input token of the request: uncached + read + written (selects the price tier)."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    @classmethod
    def from_api(cls, usage: Any) -> Usage:
        """Build from a ``usage`` JSON object or an SDK ``Usage`` / ``BetaUsage`` model."""
        data = _as_mapping(usage)
        written = _count(data, "cache_creation_input_tokens")
        split = data.get("cache_creation")
        missing = False
        if split is not None:
            split_map = _as_mapping(split)
            five = _count(split_map, "ephemeral_5m_input_tokens")
            hour = _count(split_map, "ephemeral_1h_input_tokens")
            # Any excess of the total over the split is a 5m write (a server-tool marker);
            # when the total lags behind the split, the split wins.
            five = max(five, written - hour)
        else:
            five, hour = written, 0
            missing = written > 0
        tools = _as_mapping(data.get("server_tool_use"))
        return cls(
            input_tokens=_count(data, "input_tokens"),
            cache_read_input_tokens=_count(data, "cache_read_input_tokens"),
            ephemeral_5m_input_tokens=five,
            ephemeral_1h_input_tokens=hour,
            output_tokens=_count(data, "output_tokens"),
            web_search_requests=_count(tools, "web_search_requests"),
            web_fetch_requests=_count(tools, "web_fetch_requests"),
            service_tier=data.get("service_tier"),
            inference_geo=data.get("inference_geo"),
            speed=data.get("speed"),
            ttl_split_missing=missing,
        )

    def to_api(self) -> dict[str, Any]:
        """The API's JSON shape for this usage (what a Message carries)."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.ephemeral_1h_input_tokens,
            },
            "output_tokens": self.output_tokens,
            "server_tool_use": (
                {
                    "web_search_requests": self.web_search_requests,
                    "web_fetch_requests": self.web_fetch_requests,
                }
                if self.web_search_requests or self.web_fetch_requests
                else None
            ),
            "service_tier": self.service_tier,
            "inference_geo": self.inference_geo,
            "speed": self.speed,
        }

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return replace(
            self,
            input_tokens=self.input_tokens + other.input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            ephemeral_5m_input_tokens=self.ephemeral_5m_input_tokens + other.ephemeral_5m_input_tokens,
            ephemeral_1h_input_tokens=self.ephemeral_1h_input_tokens + other.ephemeral_1h_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            web_search_requests=self.web_search_requests + other.web_search_requests,
            web_fetch_requests=self.web_fetch_requests + other.web_fetch_requests,
            code_execution_hours=self.code_execution_hours + other.code_execution_hours,
            ttl_split_missing=self.ttl_split_missing or other.ttl_split_missing,
        )


_DELTA_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


class StreamUsage:
    """Follows usage through an SSE stream: start from ``message_start``, replace on each delta.

    ``feed`` takes a decoded event (``{"type": ..., ...}``) or an SDK event object.
    ``complete`` turns true on ``message_stop``; a stream cut before it stays
    incomplete, and ``usage`` still returns what was seen.
    """

    __slots__ = ("_data", "complete", "message_id", "model", "seen_start")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self.seen_start = False
        self.complete = False
        self.message_id: str | None = None
        self.model: str | None = None

    def feed(self, event: Any) -> None:
        data = _as_mapping(event)
        kind = data.get("type")
        if kind == "message_start":
            message = _as_mapping(data.get("message"))
            self.message_id = message.get("id")
            self.model = message.get("model")
            self._data = dict(_as_mapping(message.get("usage")))
            self.seen_start = True
        elif kind == "message_delta":
            delta = _as_mapping(data.get("usage"))
            for key in _DELTA_KEYS:
                if delta.get(key) is not None:
                    self._data[key] = delta[key]
            if delta.get("server_tool_use") is not None:
                self._data["server_tool_use"] = delta["server_tool_use"]
        elif kind == "message_stop":
            self.complete = True

    @property
    def usage(self) -> Usage:
        return Usage.from_api(self._data)
