"""Replay request bodies with their times under each caching strategy, on the emulator in virtual time.

Input: JSONL, one ``{"time": "<ISO 8601 with zone>", "body": {<Messages request>}}`` per line.
Each strategy runs the requests, in time order, against a fresh :class:`~cachewise.emulator.Emulator`
whose clock jumps to each request's time, so reads, writes and expiries follow the recorded gaps:

``none``      every ``cache_control`` removed;
``recorded``  the bodies as written;
``auto``      markers removed, one top-level ``cache_control`` (automatic caching);
``static``    markers removed, one on the last system block (else the last tool);
``planner``   the bodies through ``cachewise.wrap`` with the default :class:`~cachewise.CachePlanner`.

Only the prompt is priced (input, cache writes and reads; output is the same whatever is cached):
each request is sent with ``max_tokens: 1`` and its output tokens are not counted. Prices come from
the price book at each request's time, in exact ``Decimal``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2

from ..emulator import Emulator, EmulatorTransport
from ..ledger import Ledger
from ..pricing import PriceBook, price
from ..prompt import strip_cache_control
from ..usage import Usage
from ..wrap import wrap

__all__ = ["STRATEGIES", "Outcome", "TimedRequest", "apply_strategy", "read_requests", "replay"]

STRATEGIES: tuple[str, ...] = ("none", "recorded", "auto", "static", "planner")


@dataclass(frozen=True, slots=True)
class TimedRequest:
    """One request body and when it was sent (aware UTC)."""

    at: datetime
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one strategy cost on the requests: the prompt's cost and its token split."""

    strategy: str
    calls: int
    cost: Decimal
    input_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int

    @property
    def hit_ratio(self) -> float:
        total = self.input_tokens + self.cache_write_tokens + self.cache_read_tokens
        return self.cache_read_tokens / total if total else 0.0


def read_requests(path: Path) -> list[TimedRequest]:
    """The requests of a JSONL file, oldest first; a bad line raises ``ValueError`` naming it."""
    out: list[TimedRequest] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{where}: not JSON ({exc})") from None
            if not isinstance(item, dict) or not isinstance(item.get("body"), dict):
                raise ValueError(f'{where}: expected {{"time": ..., "body": {{...}}}}')
            try:
                at = datetime.fromisoformat(str(item.get("time")).replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{where}: time {item.get('time')!r} is not an ISO 8601 time") from None
            if at.tzinfo is None:
                raise ValueError(f"{where}: time {item['time']!r} has no timezone")
            out.append(TimedRequest(at, item["body"]))
    return sorted(out, key=lambda r: r.at)


def apply_strategy(strategy: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` as ``strategy`` would send it (``planner`` is applied by the wrapper, so as written)."""
    if strategy in ("recorded", "planner"):
        return dict(body)
    plain: dict[str, Any] = strip_cache_control(dict(body))
    if strategy == "none":
        return plain
    if strategy == "auto":
        return {**plain, "cache_control": {"type": "ephemeral"}}
    if strategy == "static":
        system = plain.get("system")
        marker = {"type": "ephemeral"}
        if isinstance(system, str) and system:
            plain["system"] = [{"type": "text", "text": system, "cache_control": marker}]
        elif isinstance(system, list) and system:
            plain["system"] = [*system[:-1], {**system[-1], "cache_control": marker}]
        elif plain.get("tools"):
            plain["tools"] = [*plain["tools"][:-1], {**plain["tools"][-1], "cache_control": marker}]
        return plain
    raise ValueError(f"strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")


def _prompt_cost(book: PriceBook, rows: Sequence[Mapping[str, Any]]) -> Outcome:
    cost, inp, write, read = Decimal(0), 0, 0, 0
    for row in rows:
        usage = replace(Usage.read(row["usage"]).usage, output_tokens=0)
        at = row["time"] if isinstance(row["time"], datetime) else datetime.fromisoformat(str(row["time"]))
        cost += price(book, usage, str(row["model"]), at).total
        inp += usage.input_tokens
        write += usage.cache_creation_input_tokens
        read += usage.cache_read_input_tokens
    return Outcome("", len(rows), cost, inp, write, read)


def replay(requests: Sequence[TimedRequest], strategy: str, book: PriceBook | None = None) -> Outcome:
    """Run ``requests`` under ``strategy`` on a fresh emulator in virtual time; the prompt's cost."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    used = book if book is not None else PriceBook.default()
    if not requests:
        return Outcome(strategy, 0, Decimal(0), 0, 0, 0)
    emulator = Emulator(book=used, start=requests[0].at)
    http = httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator")
    raw = anthropic.Anthropic(
        api_key="sk-ant-whatif", base_url="http://emulator", max_retries=0, http_client=http
    )
    with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "whatif.db") as led:
        client: anthropic.Anthropic = raw
        if strategy == "planner":
            client = wrap(raw, ledger=led, planner=True, clock=emulator.now, book=used, diagnostics=False)
        for request in requests:
            gap = (request.at - emulator.now()).total_seconds()
            if gap > 0:
                emulator.advance(gap)
            body = {**apply_strategy(strategy, request.body), "max_tokens": 1, "stream": False}
            client.messages.create(**body)
        led.flush()
    http.close()
    outcome = _prompt_cost(used, emulator.bill())
    return replace(outcome, strategy=strategy)
