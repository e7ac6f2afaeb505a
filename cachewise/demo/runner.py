"""Run the demo workload twice (as written, then through cachewise) and compare the bills."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import anthropic
import pandas as pd
import platformdirs

from ..emulator import Emulator, EmulatorServer
from ..ledger import Ledger
from ..tags import tags
from ..workloads import AFTERNOON, Workload, play, send_with
from ..wrap import wrap

__all__ = ["DemoResult", "default_demo_db", "run_demo"]

RUNS = (("baseline", False), ("cachewise", True))


def default_demo_db() -> Path:
    """``CACHEWISE_DEMO_DB``, else ``demo.sqlite`` in the user's data directory."""
    configured = os.environ.get("CACHEWISE_DEMO_DB")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_data_dir("cachewise")) / "demo.sqlite"


@dataclass(frozen=True)
class DemoResult:
    session: str
    ledger: str
    summary: pd.DataFrame
    emulator_bills: dict[str, Decimal]
    seconds: float
    live: bool

    @property
    def total_saved(self) -> Decimal:
        return sum(self.summary["saved"], Decimal(0))


def _summary(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for model, group in frame.groupby("model", sort=True):
        runs = {run: group[group["demo_run"] == run] for run, _ in RUNS}
        base = sum(runs["baseline"]["cost_total"], Decimal(0))
        wise = sum(runs["cachewise"]["cost_total"], Decimal(0))
        wise_rows = runs["cachewise"]
        prompt = int(
            wise_rows["input_tokens"].sum()
            + wise_rows["cache_read_input_tokens"].sum()
            + wise_rows["cache_creation_input_tokens"].sum()
        )
        rows.append(
            {
                "model": model,
                "calls": len(wise_rows),
                "baseline_cost": base,
                "cachewise_cost": wise,
                "saved": base - wise,
                "saved_pct": (base - wise) / base * 100 if base else Decimal(0),
                "hit_ratio": int(wise_rows["cache_read_input_tokens"].sum()) / prompt if prompt else 0.0,
            }
        )
    return pd.DataFrame(rows)


def run_demo(
    db: str | Path | None = None,
    *,
    live: bool = False,
    workloads: Sequence[Workload] = AFTERNOON,
) -> DemoResult:
    """Run every workload without and with cachewise, record both in the ledger, summarise per model.

    Offline (default) the embedded emulator answers, in virtual time. With ``live=True`` the real
    API is called (``ANTHROPIC_API_KEY`` must be set) with the first workload only, in real time.
    """
    started = time.perf_counter()
    session = uuid.uuid4().hex[:12]
    ledger = Ledger(db if db is not None else default_demo_db())
    bills: dict[str, Decimal] = {}
    try:
        if live:
            for run, planner in RUNS:
                with anthropic.Anthropic() as base:
                    client = wrap(
                        base, ledger=ledger, planner=planner, tags={"demo_run": run, "demo_session": session}
                    )
                    with tags(workload=workloads[0].name):
                        play(workloads[0], send_with(client))
        else:
            # Virtual time starting now (to the minute): both runs replay the same afternoon, and the
            # rows land in today's reports, priced with the table in force today.
            start = datetime.now(UTC).replace(second=0, microsecond=0)
            with EmulatorServer(Emulator(start=start)) as server:
                emulator = server.emulator
                for run, planner in RUNS:
                    emulator.reset()
                    with anthropic.Anthropic(
                        api_key="sk-ant-demo", base_url=server.base_url, max_retries=0
                    ) as base:
                        client = wrap(
                            base,
                            ledger=ledger,
                            planner=planner,
                            clock=emulator.now,
                            tags={"demo_run": run, "demo_session": session},
                        )
                        for workload in workloads:
                            with tags(workload=workload.name):
                                play(workload, send_with(client), emulator)
                    bills[run] = emulator.bill_total()
        ledger.flush()
        frame = ledger.to_frame(tags={"demo_session": session})
        frame["demo_run"] = [t.get("demo_run") for t in frame["tags"]]
        summary = _summary(frame[frame["status"] == "ok"])
    finally:
        ledger.close()
    return DemoResult(
        session=session,
        ledger=str(ledger.label),
        summary=summary,
        emulator_bills=bills,
        seconds=time.perf_counter() - started,
        live=live,
    )
