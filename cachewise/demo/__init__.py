"""``cachewise demo``: a realistic workload, run with and without cachewise, priced from the ledger."""

from __future__ import annotations

from .runner import DemoResult, run_demo
from .workload import WORKLOADS, Workload

__all__ = ["WORKLOADS", "DemoResult", "Workload", "run_demo"]
