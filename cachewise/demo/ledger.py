"""The ledger the notebooks read: the demo provides it (reports never start the demo)."""

from __future__ import annotations

import os
from pathlib import Path

from .runner import default_demo_db, run_demo

__all__ = ["open_demo_ledger"]


def open_demo_ledger() -> str:
    """``$CACHEWISE_DB``, else the demo ledger (``cachewise demo``'s), recorded by the demo if missing."""
    configured = os.environ.get("CACHEWISE_DB")
    if configured and "://" in configured:
        return configured
    path = Path(configured) if configured else default_demo_db()
    if not path.exists():
        run_demo(path)  # the real demo: the emulator, a wrapped client, both runs
    return str(path)
