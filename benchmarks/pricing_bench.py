"""Price usages one by one with the exact ``Decimal`` cost model (the path every record takes).

    python benchmarks/pricing_bench.py [--rows 100000]

Prints the rows per second and the total, so a change to the cost model can be compared with
the previous figure. (The vectorised pricer this benchmark used to compare against had no caller
and was removed; a scale-oriented one may come back with its own benchmark.)
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cachewise import PriceBook, PricingError, Usage, price

MODELS = ["claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5", "claude-sonnet-5-5"]


def make_rows(rows: int) -> list[tuple[str, datetime, Usage]]:
    rng = random.Random(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (
            rng.choice(MODELS),
            start + timedelta(seconds=rng.randrange(300 * 86400)),
            Usage(
                input_tokens=rng.randrange(50_000),
                cache_read_input_tokens=rng.randrange(150_000),
                ephemeral_5m_input_tokens=rng.randrange(20_000),
                ephemeral_1h_input_tokens=rng.randrange(5_000),
                output_tokens=rng.randrange(4_000),
                service_tier=rng.choice(["standard", "batch"]),
            ),
        )
        for _ in range(rows)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    book = PriceBook.load()
    rows = make_rows(args.rows)
    t0 = time.perf_counter()
    total = Decimal(0)
    unpriced = 0
    for model, at, usage in rows:
        try:
            total += price(book, usage, model, at).total
        except PricingError:
            unpriced += 1
    seconds = time.perf_counter() - t0
    print(f"rows: {args.rows:,}; total ${total:.6f}; unpriced {unpriced}")
    print(f"per-row Decimal pricing: {seconds:.2f} s ({args.rows / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
