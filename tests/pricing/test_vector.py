"""The vectorised pricing path agrees with the per-row Decimal path, to the pico-dollar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import numpy as np
import pandas as pd

from cachewise import PriceBook, PricingError, Usage, price
from cachewise.pricing.vector import PICO, picos_to_dollars, price_frame

BOOK = PriceBook.load()


def _frame(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    models = [
        "claude-sonnet-4-5",
        "claude-opus-4-6",
        "claude-haiku-5-5",
        "claude-sonnet-5-5",
        "claude-foo-9",
        "claude-3-haiku-20240307",
        "claude-opus-4-6",
    ]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return pd.DataFrame(
        {
            "model": rng.choice(models, rows),
            "started_at": [start + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 300, rows)],
            "input_tokens": rng.integers(0, 150_000, rows),
            "cache_read_input_tokens": rng.integers(0, 150_000, rows),
            "ephemeral_5m_input_tokens": rng.integers(0, 20_000, rows),
            "ephemeral_1h_input_tokens": rng.integers(0, 20_000, rows),
            "output_tokens": rng.integers(0, 4_000, rows),
            "web_search_requests": rng.integers(0, 3, rows),
            "service_tier": rng.choice(["standard", "batch", None], rows),
            "speed": rng.choice(["standard", "fast", None], rows, p=[0.45, 0.1, 0.45]),
            "inference_geo": rng.choice(["global", "us", None], rows),
        }
    )


def test_vector_path_equals_row_path() -> None:
    frame = _frame(400)
    priced = price_frame(frame, BOOK)
    checked = 0
    for i, row in frame.iterrows():
        usage = Usage(
            input_tokens=int(row.input_tokens),
            cache_read_input_tokens=int(row.cache_read_input_tokens),
            ephemeral_5m_input_tokens=int(row.ephemeral_5m_input_tokens),
            ephemeral_1h_input_tokens=int(row.ephemeral_1h_input_tokens),
            output_tokens=int(row.output_tokens),
            web_search_requests=int(row.web_search_requests),
            service_tier=row.service_tier,
            speed=row.speed,
            inference_geo=row.inference_geo,
        )
        day = pd.Timestamp(row.started_at).floor("D").to_pydatetime()
        try:
            cost = price(BOOK, usage, row.model, day)
        except PricingError as exc:
            assert priced.at[i, "cost_error"] == str(exc)
            continue
        assert priced.at[i, "cost_error"] is None
        assert D(int(priced.at[i, "cost_total"])) / PICO == cost.total
        assert D(int(priced.at[i, "cost_no_cache"])) / PICO == cost.no_cache_total
        assert D(int(priced.at[i, "cost_cache_read"])) / PICO == cost.cache_read
        checked += 1
    assert checked > 100  # most rows are priceable; the unknown model and bad modifiers are not
    assert priced["cost_error"].notna().any()


def test_exact_sums() -> None:
    assert picos_to_dollars([10**12, 5 * 10**11, 1]) == D("1.500000000001")
