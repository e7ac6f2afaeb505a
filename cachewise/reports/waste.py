"""Write waste: cache writes that no later call read back within the entry's lifetime.

The ledger does not see the server's cache, only calls. The approximation, per
row, is (docs/reports.md, "Write waste"):

* a *family* is the set of rows with the same ``prefix_hash`` (the hash of the
  cached prefix of the request); rows without one are not matched and their
  writes are reported as ``unattributed_write_tokens``, never as waste or reuse;
* a row's 5-minute write tokens (``ephemeral_5m_input_tokens``) are *wasted*
  unless a later row of the same family, started strictly after it and at most
  5 minutes after it, has ``cache_read_input_tokens > 0``; its 1-hour write
  tokens likewise with a 1-hour window (docs/api-notes.md §2.2: the lifetime runs from
  the start of the request that wrote the entry);
* a wasted write costs the row's own write component (``cost_cache_write_5m``
  or ``cost_cache_write_1h``); unpriced rows add tokens but no cost.

Known gaps: a read refreshes an entry (docs/api-notes.md §2.2), so a chain of reads each
within the TTL of the previous keeps an entry alive; the approximation only asks
whether the *first* read after a write came in time, which is the question for
that write. A read in the same family may have hit a shorter prefix than the one
written (§2.1), which this counts as a read back.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from .columns import ZERO, unpriced_mask

__all__ = ["TTL_1H", "TTL_5M", "annotate_waste"]

TTL_5M = timedelta(minutes=5)
TTL_1H = timedelta(hours=1)


def annotate_waste(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``wasted_5m_tokens``, ``wasted_1h_tokens``, ``wasted_write_tokens``,
    ``wasted_write_cost`` (Decimal) and ``unattributed_write_tokens`` to a copy of ``frame``."""
    out = frame.copy()
    n = len(out)
    five = out["ephemeral_5m_input_tokens"].to_numpy(dtype=np.int64)
    hour = out["ephemeral_1h_input_tokens"].to_numpy(dtype=np.int64)
    family = out["prefix_hash"]
    has_family = family.notna().to_numpy()
    wasted5 = np.zeros(n, dtype=np.int64)
    wasted1 = np.zeros(n, dtype=np.int64)
    if n and has_family.any():
        keyed = pd.DataFrame(
            {
                "family": family.to_numpy()[has_family],
                "at": out["started_at"].to_numpy(dtype="datetime64[ns]")[has_family],
                "read": out["cache_read_input_tokens"].to_numpy()[has_family] > 0,
                "pos": np.flatnonzero(has_family),
            }
        ).sort_values(["family", "at"], kind="stable")
        read_at = keyed["at"].where(keyed["read"])
        # For each row, the start of the first *later* reading row of its family.
        later = read_at.groupby(keyed["family"], sort=False).shift(-1)
        next_read = later.groupby(keyed["family"], sort=False).bfill()
        gap = next_read - keyed["at"]
        pos = keyed["pos"].to_numpy()
        read5 = (gap.notna() & (gap > pd.Timedelta(0)) & (gap <= pd.Timedelta(TTL_5M))).to_numpy()
        read1 = (gap.notna() & (gap > pd.Timedelta(0)) & (gap <= pd.Timedelta(TTL_1H))).to_numpy()
        wasted5[pos] = np.where(read5, 0, five[pos])
        wasted1[pos] = np.where(read1, 0, hour[pos])
    out["wasted_5m_tokens"] = wasted5
    out["wasted_1h_tokens"] = wasted1
    out["wasted_write_tokens"] = wasted5 + wasted1
    out["unattributed_write_tokens"] = np.where(has_family, 0, five + hour).astype(np.int64)
    priced = ~unpriced_mask(out).to_numpy()
    zero = np.full(n, ZERO, dtype=object)
    cost5 = np.where(priced & (wasted5 > 0), out["cost_cache_write_5m"].to_numpy(dtype=object), zero)
    cost1 = np.where(priced & (wasted1 > 0), out["cost_cache_write_1h"].to_numpy(dtype=object), zero)
    cost = cost5 + cost1
    out["wasted_write_cost"] = pd.Series(cost, index=out.index, dtype=object)
    return out
