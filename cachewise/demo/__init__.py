"""``cachewise demo``: a realistic workload, run with and without cachewise, priced from the ledger."""

from __future__ import annotations

from ..workloads import AFTERNOON as WORKLOADS
from ..workloads import Workload
from .runner import DemoResult, run_demo

__all__ = ["WORKLOADS", "DemoResult", "Workload", "run_demo"]
