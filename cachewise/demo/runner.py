"""Run the demo workload twice (as written, then through cachewise) and compare the bills."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

__all__ = ["FEATURES", "DemoResult", "default_demo_db", "feature", "run_demo", "span"]

RUNS = (("baseline", False), ("cachewise", True))

#: The product feature each demo workload stands for: its calls carry it as the ``feature`` tag,
#: the tag the notebooks and ``cachewise report --by tag:feature`` group by.
FEATURES: dict[str, str] = {
    "support_chat": "support-bot",
    "document_qa": "contract-review",
    "agent_loop": "coding-agent",
}


def feature(workload: Workload) -> str:
    """The ``feature`` tag of ``workload``'s calls (:data:`FEATURES`, else the workload's name)."""
    return FEATURES.get(workload.name, workload.name)


class _Stopwatch:
    """A clock that only counts the seconds :func:`play` advances it by (nothing is sent)."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.elapsed = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def advance(self, seconds: float) -> datetime:
        self.elapsed += seconds
        return self.now()


@dataclass(frozen=True, slots=True)
class _NoReply:
    """What a dry run hands a script that reads its replies: a message with no content."""

    content: tuple[object, ...] = ()


def span(workloads: Sequence[Workload]) -> float:
    """The seconds ``workloads`` take when replayed one after another (a dry run: nothing is sent).

    The demo's scripts time their calls without looking at the replies' content, so a reply with no
    content gives the same timeline as the real run.
    """
    watch = _Stopwatch()
    for workload in workloads:
        play(workload, lambda _request: _NoReply(), watch)
    return watch.elapsed


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
                        base,
                        ledger=ledger,
                        planner=planner,
                        tags={"demo_run": run, "demo_session": session},
                        warm_start=False,  # each run starts cold, as a new process would on a new ledger
                    )
                    with tags(workload=workloads[0].name, feature=feature(workloads[0])):
                        play(workloads[0], send_with(client))
        else:
            # Virtual time that ends by now: both runs replay the same afternoon, starting its span
            # before now (to the minute, rounded down), so no row lies in the future and the rows
            # land in the last half hour's reports, priced with the table in force today.
            start = (datetime.now(UTC) - timedelta(seconds=span(workloads))).replace(second=0, microsecond=0)
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
                            # Not seeded from the ledger: it holds the other run (and earlier demos) on
                            # the same afternoon, whose entries the reset emulator no longer has.
                            warm_start=False,
                        )
                        for workload in workloads:
                            with tags(workload=workload.name, feature=feature(workload)):
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
