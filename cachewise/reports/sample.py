"""A small synthetic ledger for notebooks, docs and tests (deterministic for a seed).

Conversations of three features over ``days`` days on three models: each opens with a
cache write of its prefix, follow-ups read it back every few minutes, and some come
back after the 5-minute lifetime and write again (waste). A couple of calls use a
model with no price, so reports show how unpriced calls are reported.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..pricing import PriceBook
from ..usage import Usage

if TYPE_CHECKING:
    from ..ledger.record import CallRecord

__all__ = ["UNPRICED_MODEL", "sample_ledger", "sample_records"]

UNPRICED_MODEL = "claude-experimental-0"
_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5")
_FEATURES = {"search": (6000, 2), "chat": (3000, 6), "summarize": (12000, 1)}


def sample_records(
    *,
    days: int = 14,
    conversations_per_day: int = 12,
    seed: int = 7,
    end: datetime | None = None,
    unpriced: int = 2,
    book: PriceBook | None = None,
) -> list[CallRecord]:
    """Priced :class:`~cachewise.ledger.CallRecord` objects, oldest first."""
    from ..ledger.record import CallRecord

    rng = random.Random(seed)
    used = book or PriceBook.default()
    stop = (end or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    first_day = stop - timedelta(days=days)
    records: list[CallRecord] = []
    counter = 0
    for day in range(days):
        for conv in range(conversations_per_day):
            feature = rng.choice(list(_FEATURES))
            prefix_tokens, turns = _FEATURES[feature]
            model = _MODELS[(day + conv) % len(_MODELS)] if feature != "summarize" else "claude-haiku-4-5"
            family = hashlib.sha256(f"{seed}:{day}:{conv}".encode()).hexdigest()[:16]
            ttl_1h = feature == "summarize"
            at = first_day + timedelta(days=day, hours=rng.randint(8, 18), minutes=rng.randint(0, 59))
            last_write = at
            for turn in range(turns + rng.randint(0, 3)):
                if turn:
                    at += timedelta(minutes=rng.choice((1, 2, 3, 4, 7)))
                expired = (at - last_write) > (timedelta(hours=1) if ttl_1h else timedelta(minutes=5))
                write = turn == 0 or expired
                last_write = at  # a write starts the lifetime, a read refreshes it (docs/api-notes.md §2.2)
                fresh = rng.randint(200, 1500)
                usage = Usage(
                    input_tokens=fresh,
                    cache_read_input_tokens=0 if write else prefix_tokens,
                    ephemeral_5m_input_tokens=prefix_tokens if write and not ttl_1h else 0,
                    ephemeral_1h_input_tokens=prefix_tokens if write and ttl_1h else 0,
                    output_tokens=rng.randint(100, 900),
                )
                counter += 1
                records.append(
                    CallRecord.priced(
                        usage=usage,
                        model=model,
                        started_at=at,
                        request_id=f"req_sample_{seed}_{counter:06d}",
                        book=used,
                        prefix_hash=family,
                        tags={"feature": feature, "user": f"u{conv % 4}"},
                        latency_ms=float(rng.randint(400, 4000)),
                    )
                )
    for index in range(unpriced):
        counter += 1
        records.append(
            CallRecord.priced(
                usage=Usage(input_tokens=2500, output_tokens=300),
                model=UNPRICED_MODEL,
                started_at=stop - timedelta(hours=2 + index),
                request_id=f"req_sample_{seed}_{counter:06d}",
                book=used,
                tags={"feature": "chat", "user": "u0"},
            )
        )
    records.sort(key=lambda r: r.started_at)
    return records


def sample_ledger(
    path: str | Path,
    *,
    days: int = 14,
    conversations_per_day: int = 12,
    seed: int = 7,
    end: datetime | None = None,
    unpriced: int = 2,
) -> Path:
    """Write :func:`sample_records` into a SQLite ledger at ``path`` (created if missing); return the path."""
    from ..ledger import Ledger

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    records = sample_records(
        days=days, conversations_per_day=conversations_per_day, seed=seed, end=end, unpriced=unpriced
    )
    with Ledger(target, spool_dir=target.parent / f".{target.name}.spool") as ledger:
        for record in records:
            ledger.record(record)
        ledger.flush()
    return target
