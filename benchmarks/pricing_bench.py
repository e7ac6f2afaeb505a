"""Price 1M usages: the vectorised report path against the per-row Decimal loop.

    python benchmarks/pricing_bench.py [--rows 1000000] [--loop-rows 50000]

The per-row loop is timed on --loop-rows rows and scaled to --rows (it is linear),
both in the same run; the ratio is printed.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from cachewise import PriceBook, PricingError, Usage, price
from cachewise.pricing.vector import picos_to_dollars, price_frame


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return pd.DataFrame(
        {
            "model": rng.choice(
                ["claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5", "claude-sonnet-5-5"], rows
            ),
            "started_at": pd.to_datetime(start)
            + pd.to_timedelta(rng.integers(0, 300 * 86400, rows), unit="s"),
            "input_tokens": rng.integers(0, 50_000, rows),
            "cache_read_input_tokens": rng.integers(0, 150_000, rows),
            "ephemeral_5m_input_tokens": rng.integers(0, 20_000, rows),
            "ephemeral_1h_input_tokens": rng.integers(0, 5_000, rows),
            "output_tokens": rng.integers(0, 4_000, rows),
            "service_tier": rng.choice(["standard", "batch"], rows),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--loop-rows", type=int, default=50_000)
    args = parser.parse_args()
    book = PriceBook.load()
    frame = make_frame(args.rows)

    tracemalloc.start()
    t0 = time.perf_counter()
    priced = price_frame(frame, book)
    total = picos_to_dollars(priced["cost_total"])
    vector_s = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    sample = frame.head(args.loop_rows)
    t0 = time.perf_counter()
    loop_total = 0
    for row in sample.itertuples(index=False):
        usage = Usage(
            input_tokens=int(row.input_tokens),
            cache_read_input_tokens=int(row.cache_read_input_tokens),
            ephemeral_5m_input_tokens=int(row.ephemeral_5m_input_tokens),
            ephemeral_1h_input_tokens=int(row.ephemeral_1h_input_tokens),
            output_tokens=int(row.output_tokens),
            service_tier=str(row.service_tier),
        )
        try:
            loop_total += price(book, usage, str(row.model), row.started_at.to_pydatetime()).total
        except PricingError:
            pass
    loop_s = (time.perf_counter() - t0) * args.rows / len(sample)
    check = picos_to_dollars(priced["cost_total"].head(args.loop_rows))
    assert check == loop_total, (check, loop_total)

    print(f"rows: {args.rows:,}; total ${total:.6f}")
    print(
        f"vectorised: {vector_s:.2f} s ({args.rows / vector_s:,.0f} rows/s), "
        f"peak traced memory {peak / 2**20:.0f} MiB"
    )
    print(f"per-row Decimal loop: {loop_s:.2f} s (measured on {len(sample):,} rows, scaled)")
    print(f"ratio loop/vectorised: {loop_s / vector_s:.1f}x; first {len(sample):,} rows agree exactly")


if __name__ == "__main__":
    main()
