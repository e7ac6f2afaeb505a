"""One normalised, additive token usage, built from every shape the API uses.

The API reports usage in three places: the ``usage`` object of a Message (JSON
or SDK model), ``message_start`` / ``message_delta`` stream events, and batch
result lines. This module is the single place those shapes are translated.

Rules (docs/api-notes.md, "Usage fields"):

* ``input_tokens`` excludes cached tokens; the three counters are additive.
* ``cache_creation_input_tokens`` is the sum of the 5m and 1h writes. When the
  ``cache_creation`` split is missing, every write is counted as 5m and the
  usage is flagged ``ttl_split_missing``. When the split sums to less than the
  total (a server-tool loop), the excess is counted as 5m.
* Stream usage is *replaced*, never added: ``message_start`` gives the start,
  each ``message_delta`` overwrites the counts it carries.

Trust (docs/pricing.md, "Usage that cannot be trusted"): :meth:`Usage.read`
never raises. A usage that is missing, has ``input_tokens`` or ``output_tokens``
missing or null, or holds a count that is not a whole number in
``0..MAX_TOKEN_COUNT`` (a negative, a string, a float, a list, a bool, an absurd
value) gives a :class:`UsageReading` whose ``problem`` names the field and the
value, and whose ``raw`` keeps the usage exactly as received: the call is then
recorded unpriced, never as $0. :meth:`Usage.from_api` raises a bad value as a
:class:`~cachewise.errors.UsageError` (missing counts read as 0 there).

Compaction ``iterations`` (beta) are billed tokens the top-level fields leave
out; they are added to the counters and noted in ``Usage.notes``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .errors import UsageError

__all__ = ["MAX_TOKEN_COUNT", "TOKEN_FIELDS", "StreamUsage", "Usage", "UsageReading"]

#: The largest count a usage field may hold: 1,000 x the largest context window any model
#: has (1,000,000 tokens). One request cannot bill more, even a long server-tool loop; a larger
#: value is a corrupted reply. Far below 2**63, so no trusted count can overflow a column.
MAX_TOKEN_COUNT = 1_000_000_000
#: The API's usage counters, with its own names (docs/api-notes.md §3.1), in the ledger's column
#: order. ``cache_creation_input_tokens`` is the sum of the two ephemeral writes (a property here).
TOKEN_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens",
    "output_tokens",
    "web_search_requests",
    "web_fetch_requests",
)
#: The counters :class:`Usage` stores (every one but the derived total of writes).
_COUNTS = tuple(name for name in TOKEN_FIELDS if name != "cache_creation_input_tokens")
_MISSING = object()
_REQUIRED = ("input_tokens", "output_tokens")
_STRINGS = ("service_tier", "inference_geo", "speed")


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "missing"
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):  # pragma: no cover - default=repr makes this unreachable
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Reader:
    """Reads counts out of one usage mapping, collecting every problem instead of raising."""

    def __init__(self, billed: bool = True) -> None:
        self.problems: list[UsageError] = []
        self.billed = billed

    def problem(self, where: str, value: Any, text: str) -> None:
        self.problems.append(UsageError(where, text, _shown(value)))

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return value
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            result = dump()
            if isinstance(result, Mapping):
                return result
        self.problem(where, value, "expected an object")
        return {}

    def count(self, data: Mapping[str, Any], key: str, prefix: str = "", *, required: bool = False) -> int:
        value = data.get(key, _MISSING)
        where = f"{prefix}{key}"
        if value is _MISSING or value is None:
            if required and self.billed:
                self.problem(where, value, "a billed reply must report this count")
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problem(where, value, "a token count must be a non-negative integer")
            return 0
        if value > MAX_TOKEN_COUNT:
            self.problem(
                where,
                value,
                f"above {MAX_TOKEN_COUNT:,}, more than one request can bill "
                "(1,000 x the largest context window)",
            )
            return 0
        return value

    def text(self, data: Mapping[str, Any], key: str) -> str | None:
        value = data.get(key)
        if value is None or isinstance(value, str):
            return value
        self.problem(key, value, "expected a string")
        return None


def _raw_text(obj: Any) -> str:
    """The usage as received, as JSON text (SDK models dumped as JSON, anything else by repr)."""
    dump = getattr(obj, "model_dump", None)
    if callable(dump) and not isinstance(obj, Mapping):
        try:
            obj = dump(mode="json")
        except Exception:  # a broken model is shown by repr
            obj = repr(obj)
    return json.dumps(obj, default=repr, ensure_ascii=False)


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
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in _COUNTS:
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
        """Build from a ``usage`` JSON object or an SDK ``Usage`` / ``BetaUsage`` model.

        Raises :class:`~cachewise.errors.UsageError` for a value that cannot be trusted (see
        :meth:`read`); a missing usage or missing counts read as 0 here (a partial usage is fine
        for the planner and tests). A billed reply is judged with :meth:`read`, which also
        requires the usage and its ``input_tokens`` / ``output_tokens``.
        """
        reading = cls.read(usage, billed=False)
        if reading.problem is not None:
            raise reading.problem
        return reading.usage

    @classmethod
    def read(cls, usage: Any, *, billed: bool = True) -> UsageReading:
        """Normalise ``usage`` without raising: the usage, and what made it untrustworthy, if anything.

        Counts that are valid are kept and the bad ones read as 0; ``raw`` holds the usage exactly
        as received whenever it is untrusted or carries ``iterations``.
        """
        reader = _Reader(billed)
        if usage is None and billed:
            reader.problem("<root>", _MISSING, "a billed reply must report its usage")
            return UsageReading(cls(), raw="null", problems=tuple(reader.problems))
        data = reader.mapping(usage, "<root>")
        written = reader.count(data, "cache_creation_input_tokens")
        split = data.get("cache_creation")
        missing = False
        if split is not None:
            split_map = reader.mapping(split, "cache_creation")
            five = reader.count(split_map, "ephemeral_5m_input_tokens", "cache_creation.")
            hour = reader.count(split_map, "ephemeral_1h_input_tokens", "cache_creation.")
            # Any excess of the total over the split is a 5m write (a server-tool marker);
            # when the total lags behind the split, the split wins.
            five = max(five, written - hour)
        else:
            five, hour = written, 0
            missing = written > 0
        tools = reader.mapping(data.get("server_tool_use"), "server_tool_use")
        usage_ = cls(
            input_tokens=reader.count(data, "input_tokens", required=True),
            cache_read_input_tokens=reader.count(data, "cache_read_input_tokens"),
            ephemeral_5m_input_tokens=five,
            ephemeral_1h_input_tokens=hour,
            output_tokens=reader.count(data, "output_tokens", required=True),
            web_search_requests=reader.count(tools, "web_search_requests", "server_tool_use."),
            web_fetch_requests=reader.count(tools, "web_fetch_requests", "server_tool_use."),
            service_tier=reader.text(data, "service_tier"),
            inference_geo=reader.text(data, "inference_geo"),
            speed=reader.text(data, "speed"),
            ttl_split_missing=missing,
        )
        iterations = data.get("iterations")
        if iterations is not None:
            usage_ = _with_iterations(usage_, iterations, reader)
        problems = tuple(reader.problems)
        keep = bool(problems) or iterations is not None
        return UsageReading(usage_, raw=_raw_text(usage) if keep else None, problems=problems)

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
        summed = {name: getattr(self, name) + getattr(other, name) for name in _COUNTS}
        return replace(
            self,
            **summed,
            code_execution_hours=self.code_execution_hours + other.code_execution_hours,
            ttl_split_missing=self.ttl_split_missing or other.ttl_split_missing,
            notes=tuple(dict.fromkeys((*self.notes, *other.notes))),
        )


def _with_iterations(usage: Usage, iterations: Any, reader: _Reader) -> Usage:
    """Add the compaction iterations' tokens (billed, but outside the top-level counts) and note them.

    ``message`` and ``fallback_message`` entries are already in the top-level counts;
    ``advisor_message`` entries name another model and are only noted (docs/pricing.md).
    """
    if not isinstance(iterations, list):
        reader.problem("iterations", iterations, "expected a list")
        return usage
    extra = Usage()
    compactions = 0
    others: list[str] = []
    for index, item in enumerate(iterations):
        where = f"iterations[{index}]"
        entry = reader.mapping(item, where)
        kind = entry.get("type")
        if kind != "compaction":
            if kind == "advisor_message":
                others.append(f"{kind} on {entry.get('model')}")
            continue
        compactions += 1
        prefix = f"{where}."
        written = reader.count(entry, "cache_creation_input_tokens", prefix)
        five, hour = written, 0
        if entry.get("cache_creation") is not None:
            split = reader.mapping(entry.get("cache_creation"), f"{where}.cache_creation")
            hour = reader.count(split, "ephemeral_1h_input_tokens", f"{where}.cache_creation.")
            five = max(
                reader.count(split, "ephemeral_5m_input_tokens", f"{where}.cache_creation."), written - hour
            )
        extra = extra + Usage(
            input_tokens=reader.count(entry, "input_tokens", prefix, required=True),
            cache_read_input_tokens=reader.count(entry, "cache_read_input_tokens", prefix),
            ephemeral_5m_input_tokens=five,
            ephemeral_1h_input_tokens=hour,
            output_tokens=reader.count(entry, "output_tokens", prefix, required=True),
        )
    notes: list[str] = []
    if compactions:
        notes.append(
            f"usage.iterations: {compactions} compaction iteration(s), "
            f"{extra.prompt_tokens + extra.output_tokens} tokens outside the top-level usage, "
            "billed at this call's rates (not confirmed by the API docs)"
        )
    if others:
        notes.append(
            f"usage.iterations: {', '.join(others)} priced from the top-level usage at this call's model"
        )
    return replace(usage + extra, notes=tuple(notes), speed=usage.speed, service_tier=usage.service_tier)


@dataclass(frozen=True, slots=True)
class UsageReading:
    """What :meth:`Usage.read` made of a usage: the counts, and whether they can be trusted.

    ``raw`` is the usage as received (JSON text) when it is untrusted or carries ``iterations``;
    ``problems`` name each field that could not be trusted, with its value.
    """

    usage: Usage
    raw: str | None = None
    problems: tuple[UsageError, ...] = ()

    @property
    def trusted(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> UsageError | None:
        """The first problem (the one a strict reader raises), or ``None``."""
        return self.problems[0] if self.problems else None

    @property
    def cost_error(self) -> str | None:
        """Every problem in one line, for ``CallRecord.cost_error``; ``None`` when trusted."""
        return "; ".join(str(p) for p in self.problems) or None


_DELTA_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


class StreamUsage:
    """Follows usage through an SSE stream: start from ``message_start``, replace on each delta.

    ``feed`` takes a decoded event (``{"type": ..., ...}``) or an SDK event object and never
    raises. ``complete`` turns true on ``message_stop``; a stream cut before it stays
    incomplete, and ``reading`` / ``usage`` still return what was seen. ``reading.raw`` holds
    the ``message_start`` usage and the last ``message_delta`` usage as received.
    """

    __slots__ = (
        "_data",
        "_delta_raw",
        "_problems",
        "_start_raw",
        "complete",
        "message_id",
        "model",
        "seen_start",
    )

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._start_raw: Any = _MISSING
        self._delta_raw: Any = _MISSING
        self._problems: list[UsageError] = []
        self.seen_start = False
        self.complete = False
        self.message_id: str | None = None
        self.model: str | None = None

    def feed(self, event: Any) -> None:
        reader = _Reader()
        data = reader.mapping(event, "<root>")
        kind = data.get("type")
        if kind == "message_start":
            message = reader.mapping(data.get("message"), "<root>")
            ident, model = message.get("id"), message.get("model")
            self.message_id = ident if isinstance(ident, str) else None
            self.model = model if isinstance(model, str) else None
            raw = message.get("usage")
            self._start_raw = raw
            self._data = dict(reader.mapping(raw, "<root>")) if raw is not None else {}
            self.seen_start = True
        elif kind == "message_delta":
            raw = data.get("usage")
            self._delta_raw = raw
            delta = reader.mapping(raw, "<root>")
            for key in _DELTA_KEYS:
                if delta.get(key) is not None:
                    self._data[key] = delta[key]
            for key in ("server_tool_use", "iterations"):
                if delta.get(key) is not None:
                    self._data[key] = delta[key]
        elif kind == "message_stop":
            self.stop()
        self._problems.extend(reader.problems)

    def stop(self) -> None:
        """``message_stop`` was seen (what feeding ``{"type": "message_stop"}`` does)."""
        self.complete = True

    @property
    def reading(self) -> UsageReading:
        """The usage so far, with every problem seen on the way (never raises)."""
        if self._start_raw is _MISSING or self._start_raw is None:
            reading = Usage.read(self._data if self._data else None)
        else:
            reading = Usage.read(self._data)
        problems = (*self._problems, *reading.problems)
        keep = bool(problems) or "iterations" in self._data
        raw = None
        if keep:
            shown = {
                "message_start": None if self._start_raw is _MISSING else self._start_raw,
                "message_delta": None if self._delta_raw is _MISSING else self._delta_raw,
            }
            raw = _raw_text(shown)
        return UsageReading(reading.usage, raw=raw, problems=problems)

    @property
    def usage(self) -> Usage:
        """The usage so far (strict: raises :class:`~cachewise.errors.UsageError` when untrusted)."""
        reading = self.reading
        if reading.problem is not None:
            raise reading.problem
        return reading.usage
