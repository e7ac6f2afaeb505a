"""The planner on the ledger: planned from recorded hashes and sizes, it bills what it billed live."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from click.testing import CliRunner

import cachewise
from cachewise.cli import cli
from cachewise.diagnose import Seen, Sizes, points
from cachewise.emulator import Emulator, EmulatorTransport
from cachewise.emulator.positions import TAIL_OVERHEAD
from cachewise.errors import TokenCountError
from cachewise.ledger import CallRecord, Ledger
from cachewise.planner import CachePlanner
from cachewise.pricing import PriceBook, price
from cachewise.prompt import Prompt
from cachewise.tokens import TokenCounter, TokenMemo
from cachewise.usage import Usage
from cachewise.whatif import (
    RecordedCounter,
    RecordedPlanner,
    RecordedPrompt,
    apply_strategy,
    recorded_calls,
    replay_recorded,
)
from cachewise.workloads.script import play
from cachewise.workloads.suite import SUITE

from .test_ledger import _live, _requests

BOOK = PriceBook.default()


def _billed(rows: list[CallRecord]) -> Decimal:
    return sum(
        (price(BOOK, replace(r.usage, output_tokens=0), r.model, r.started_at).total for r in rows),
        Decimal(0),
    )


def _workload_rows(
    make: Any, path: Path, strategy: str = "recorded", *, planner: bool = True
) -> list[CallRecord]:
    """A suite workload (scale 1) sent through cachewise.wrap (with the planner, or ``strategy``'s
    markers without it); the ledger's rows."""
    emulator = Emulator()
    http = httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator")
    raw = anthropic.Anthropic(api_key="sk-ant-w", base_url="http://emulator", max_retries=0, http_client=http)
    planned = (
        CachePlanner(TokenCounter(raw, memo=TokenMemo(None)), clock=emulator.now, count_budget=None)
        if planner
        else False
    )
    with Ledger(path) as led:
        client = cachewise.wrap(raw, ledger=led, planner=planned, clock=emulator.now)
        play(make(1), lambda body: client.messages.create(**apply_strategy(strategy, body)), emulator)
        led.flush()
        rows = led.calls()
    http.close()
    return rows


@pytest.mark.parametrize("make", SUITE, ids=[m.__name__ for m in SUITE])
def test_each_workload_planned_from_the_ledger_bills_what_the_planner_billed_live(
    make: Any, tmp_path: Path
) -> None:
    """Tools, documents, tool-result runs, many tenants, several models: the same plans, the same bill."""
    rows = _workload_rows(make, tmp_path / "w.db")
    calls = recorded_calls(rows).calls
    assert len(calls) == len(rows)
    billed = _billed(rows)
    assert replay_recorded(calls, "recorded", BOOK).cost == billed
    planned = replay_recorded(calls, "planner", BOOK)
    assert planned.cost == billed
    assert planned.cache_read_tokens == sum(r.usage.cache_read_input_tokens for r in rows)


@pytest.mark.slow
@pytest.mark.parametrize("make", SUITE, ids=[m.__name__ for m in SUITE])
def test_each_workload_recorded_with_the_planner_replays_the_fixed_strategies_as_live(
    make: Any, tmp_path: Path
) -> None:
    """No markers, automatic caching, a static system marker: replayed from the planner's ledger, each
    bills what running it live against the emulator bills (the system end counted for the ledger)."""
    calls = recorded_calls(_workload_rows(make, tmp_path / "w.db")).calls
    for strategy in ("none", "auto", "static"):
        live = _workload_rows(make, tmp_path / f"{strategy}.db", strategy, planner=False)
        assert replay_recorded(calls, strategy, BOOK).cost == _billed(live), strategy


@pytest.mark.parametrize("traffic", ["recorded", "none", "auto", "static"])
def test_the_planner_replay_of_planned_traffic_matches_the_live_planner(traffic: str, tmp_path: Path) -> None:
    """Traffic sent with the planner on: each call's plan is made again from the ledger, identically."""
    rows = _live(_requests(), traffic, tmp_path / "planned.db", planner=True)
    outcome = replay_recorded(recorded_calls(rows).calls, "planner", BOOK)
    assert outcome.cost == _billed(rows)
    assert outcome.cache_write_tokens == sum(r.usage.cache_creation_input_tokens for r in rows)


@pytest.mark.parametrize("traffic", ["recorded", "none", "auto", "static"])
def test_unplanned_traffic_replayed_with_the_planner_is_within_one_percent(
    traffic: str, tmp_path: Path
) -> None:
    """Traffic sent without the planner: what it would have counted was never counted, so some of its
    sizes are the recorded estimates (exact where the billed usage pinned them)."""
    unplanned = _live(_requests(), traffic, tmp_path / "plain.db")
    live = _billed(_live(_requests(), traffic, tmp_path / "live.db", planner=True))
    replayed = replay_recorded(recorded_calls(unplanned).calls, "planner", BOOK).cost
    assert abs(replayed - live) <= live / 100
    if traffic == "recorded":  # the caller's markers pin every size the planner needs
        assert replayed == live


def test_the_recorded_prompt_is_the_planners_view_of_the_body() -> None:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "tools": [{"name": "t", "description": "A tool.", "input_schema": {"type": "object"}}],
        "system": [{"type": "text", "text": "Be brief. " * 50, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Read this."},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "x " * 900},
                    },
                    {
                        "type": "text",
                        "text": "Summarise.",
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    },
                ],
            },
        ],
    }
    prompt = Prompt(body)
    replay = points(Seen.of(prompt, datetime(2026, 4, 1, tzinfo=UTC)), Usage(input_tokens=5000), Sizes())
    seen = RecordedPrompt("claude-sonnet-4-6", replay)
    assert [p.level for p in seen.positions] == [p.level for p in prompt.positions]
    assert [p.kind for p in seen.positions] == [p.kind for p in prompt.positions]
    assert [p.plannable for p in seen.positions] == [p.plannable for p in prompt.positions] != [True] * 6
    assert [p.nbytes for p in seen.positions] == [p.nbytes for p in prompt.positions]
    assert [p.text_bytes for p in seen.positions] == [p.text_bytes for p in prompt.positions]
    assert [seen.cum_text(i) for i in range(len(seen))] == [prompt.cum_text(i) for i in range(len(prompt))]
    assert seen.level_ends == prompt.level_ends and seen.last_markable() == prompt.last_markable()
    assert [(m.position, m.ttl) for m in seen.markers] == [(m.position, m.ttl) for m in prompt.markers]
    assert [p.prefix_hash for p in seen.positions] == [p.prefix_hash[:16] for p in prompt.positions]
    assert seen.family == prompt.family[:16]
    assert "Be brief" not in repr(seen.body) and len(seen.body["tools"]) == 1


def test_rows_written_before_the_planner_fields_still_replay(tmp_path: Path) -> None:
    """Five-field points and no caller markers (the first step 0008 rows): estimated bytes, every marker
    the caller's; the replay runs and its plans keep to the rules."""
    rows = _live(_requests(), "recorded", tmp_path / "old.db")
    old = [
        replace(
            r,
            replay={
                "tokens": (r.replay or {})["tokens"],
                "points": [p[:5] for p in (r.replay or {})["points"]],
            },
        )
        for r in rows
    ]
    outcome = replay_recorded(recorded_calls(old).calls, "planner", BOOK)
    assert outcome.calls == len(rows) and outcome.cost > 0
    plan = RecordedPlanner(BOOK).plan_recorded(RecordedPrompt.of(old[0]), old[0].started_at)
    assert len(plan.breakpoints) <= 4 and {b.source for b in plan.breakpoints} >= {"caller"}


def test_the_recorded_planner_plans_only_recorded_calls() -> None:
    """A body is not a recorded call: no recorded time, no recorded positions (under pytest the
    fail-open policy re-raises; in use the body would go unplanned)."""
    planner = RecordedPlanner(BOOK)
    with pytest.raises(ValueError, match="plan_recorded"):
        planner.plan(apply_strategy("none", _requests()[0].body))


def test_unreadable_replay_points_name_the_call(tmp_path: Path) -> None:
    rows = _live(_requests()[:2], "recorded", tmp_path / "bad.db")
    replay = dict(rows[1].replay or {})
    replay["points"] = [["ab", 10, "footer", None, 0], *replay["points"][1:]]
    bad = replace(rows[1], replay=replay)
    with pytest.raises(ValueError, match=rf"call {bad.request_id}: .*level 'footer'"):
        replay_recorded(recorded_calls([rows[0], bad]).calls, "planner", BOOK)
    with Ledger(tmp_path / "stored.db") as led:
        led.record(bad)
        led.flush()
    since = bad.started_at.date().isoformat()
    argv = ["whatif", "--db", str(tmp_path / "stored.db"), "--since", since, "--strategy", "planner"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2 and bad.request_id in result.output and "footer" in result.output


def test_the_replay_counter_answers_a_planned_call_as_the_live_counter_did(tmp_path: Path) -> None:
    """Long agent sessions: a prefix ending on a user turn is counted with the request's closing tokens
    (the emulator's assistant header), so the live count and the cached size differ by those tokens.
    The replay's counter answers with the live count, knows what the live memo knew before planning,
    and fails a count the live planner did not get."""
    rows = _workload_rows(SUITE[[m.__name__ for m in SUITE].index("agent_sessions")], tmp_path / "a.db")
    apart = [
        (r, at, tokens)
        for r in rows
        for at, tokens, _ in (r.replay or {})["counts"]
        if tokens != (r.replay or {})["points"][at][1]
    ]
    assert apart and all(
        tokens - (r.replay or {})["points"][at][1] == TAIL_OVERHEAD for r, at, tokens in apart
    )
    row, at, tokens = apart[0]
    prompt = RecordedPrompt.of(row)
    counter = RecordedCounter()
    assert counter.count(prompt, at) == tokens
    held = {i: n for i, n, memo in (row.replay or {})["counts"] if memo}
    assert counter.known(prompt) == held
    missing = next(i for i in range(len(prompt)) if i not in (prompt.counts or {}))
    with pytest.raises(TokenCountError, match="not counted when the call was planned"):
        counter.count(prompt, missing)
    later = next(r for r in rows if any(memo for _, _, memo in (r.replay or {})["counts"]))
    assert RecordedCounter().known(RecordedPrompt.of(later))  # the live memo's knowledge, from the row


def test_the_system_end_is_counted_for_the_ledger_on_every_planned_call(
    tmp_path: Path,
) -> None:
    """The planner counts the end of the system prompt for the ledger: every planned row knows its size
    exactly, and the rows sent without the planner do not (nothing counted them)."""
    rows = _live(_requests(), "recorded", tmp_path / "planned.db", planner=True)
    system = [[p for p in (r.replay or {})["points"] if p[2] == "system"][-1] for r in rows]
    assert all(p[4] == 1 for p in system)
    plain = _live(_requests(), "recorded", tmp_path / "plain.db")
    assert all("counts" not in (r.replay or {}) for r in plain)
