"""Batch create requests are planned as a whole: breakpoints at the prefixes the batch shares.

Also: the emulator bills a batch's cache reads and writes at the cache multipliers times the
batch discount (docs/api-notes.md §6.1: the modifiers stack), checked against hand figures.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

import cachewise
from cachewise.emulator import Emulator, EmulatorServer
from cachewise.integrations.batch_planner import BatchPlanner
from cachewise.ledger import Ledger

from .conftest import API_KEY

MODEL = "claude-sonnet-4-6"
GUIDE = "Label each support ticket with one of: billing, bug, feature, other. " * 300
DOC_A = "Product manual A, chapter on invoices and refunds. " * 300
DOC_B = "Product manual B, chapter on crashes and logs. " * 300


def _params(doc: str | None, question: str, system: Any = GUIDE) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if doc is not None:
        content.append({"type": "text", "text": doc})
    content.append({"type": "text", "text": question})
    return {
        "model": MODEL,
        "max_tokens": 8,
        "system": system,
        "messages": [{"role": "user", "content": content}],
    }


def _batch() -> dict[str, Any]:
    """Eight requests on one guide: three on manual A, three on manual B, two on no manual."""
    requests = []
    for i in range(3):
        requests.append({"custom_id": f"a{i}", "params": _params(DOC_A, f"Ticket A{i}?")})
        requests.append({"custom_id": f"b{i}", "params": _params(DOC_B, f"Ticket B{i}?")})
    for i in range(2):
        requests.append({"custom_id": f"n{i}", "params": _params(None, f"Ticket N{i}?")})
    return {"requests": requests}


def _markers(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, ttl) of every marker in a request."""
    found: list[tuple[str, str]] = []
    system = params.get("system")
    for i, block in enumerate(system if isinstance(system, list) else []):
        if "cache_control" in block:
            found.append((f"system.{i}", block["cache_control"].get("ttl", "5m")))
    for m, message in enumerate(params["messages"]):
        content = message["content"]
        for b, block in enumerate(content if isinstance(content, list) else []):
            if "cache_control" in block:
                found.append((f"messages.{m}.content.{b}", block["cache_control"].get("ttl", "5m")))
    return found


def test_breakpoints_go_where_the_batch_shares_a_prefix() -> None:
    body = _batch()
    before = copy.deepcopy(body)
    planned = BatchPlanner().plan(body)
    assert body == before  # the user's batch is not changed
    assert planned is not None
    marks = {r["custom_id"]: _markers(r["params"]) for r in planned["requests"]}
    # the guide is shared by all 8, each manual by 3: both ends are marked, 1h
    for cid in ("a0", "a1", "a2", "b0", "b1", "b2"):
        assert marks[cid] == [("system.0", "1h"), ("messages.0.content.0", "1h")]
    # the requests without a manual share only the guide (their questions are their own)
    assert marks["n0"] == marks["n1"] == [("system.0", "1h")]


def test_prefixes_shared_by_too_few_or_too_short_are_not_marked() -> None:
    pair = {
        "requests": [
            {"custom_id": "x", "params": _params(DOC_A, "one?", system="Be brief.")},
            {"custom_id": "y", "params": _params(DOC_A, "two?", system="Be brief.")},
            {"custom_id": "z", "params": _params(None, "three?", system="Be brief.")},
        ]
    }
    # "Be brief." is shared by 3 but far below the minimum; DOC_A by only 2 (a 1h write
    # needs two reads to pay, docs/api-notes.md §6.1)
    assert BatchPlanner().plan(pair) is None
    assert BatchPlanner(min_sharers=2).plan(pair) is not None


def test_the_callers_markers_keep_their_slots_and_ttl_order() -> None:
    body = _batch()
    for item in body["requests"]:
        item["params"]["system"] = [
            {"type": "text", "text": GUIDE, "cache_control": {"type": "ephemeral"}}  # the caller's 5m
        ]
    planned = BatchPlanner().plan(body)
    assert planned is not None
    a0 = next(r for r in planned["requests"] if r["custom_id"] == "a0")["params"]
    # after a 5m marker only 5m may follow (TTL order, docs/api-notes.md §1)
    assert _markers(a0) == [("system.0", "5m"), ("messages.0.content.0", "5m")]
    full = _batch()
    for item in full["requests"]:
        blocks = item["params"]["messages"][0]["content"]
        for block in blocks:
            block["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
        item["params"]["messages"].append({"role": "assistant", "content": "ok"})
        item["params"]["messages"].append(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                    {"type": "text", "text": "y", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                ],
            }
        )
    with_four = BatchPlanner().plan(full)
    # requests a*/b* carry 4 markers already (no slot left); n* carry 3 and get the guide
    assert with_four is not None
    for item in with_four["requests"]:
        marks = _markers(item["params"])
        assert len(marks) <= 4
        if item["custom_id"].startswith("n"):
            assert marks[0] == ("system.0", "1h")
        else:
            assert "system.0" not in dict(marks)


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=0) as opened:
        yield opened


def _run(client: anthropic.Anthropic, emu: Emulator, ledger: Ledger, *, planner: bool) -> Decimal:
    wrapped = cachewise.wrap(client, ledger=ledger, planner=planner, clock=emu.now, diagnostics=False)
    batch = wrapped.messages.batches.create(**_batch())
    emu.advance(60)
    assert wrapped.messages.batches.retrieve(batch.id).processing_status == "ended"
    results = list(wrapped.messages.batches.results(batch.id))
    assert all(r.result.type == "succeeded" for r in results)
    rows = [r for r in emu.billing.rows() if r.batch_id == batch.id]
    assert len(rows) == 8
    return sum((r.cost.total for r in rows if r.cost is not None), Decimal(0))


def test_a_planned_batch_costs_less_than_the_same_batch_unplanned(
    client: anthropic.Anthropic, emulator: EmulatorServer, ledger: Ledger
) -> None:
    emu = emulator.emulator
    unplanned = _run(client, emu, ledger, planner=False)
    emu.reset()
    planned = _run(client, emu, ledger, planner=True)
    reads = sum(r.usage["cache_read_input_tokens"] for r in emu.billing.rows())
    assert reads > 0
    assert planned < unplanned * Decimal("0.6")


def test_batch_cache_billing_stacks_the_discount_with_the_cache_multipliers(
    client: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    emu = emulator.emulator
    marked = _params(None, "Ticket?", system=[{"type": "text", "text": GUIDE}])
    marked["system"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    five = copy.deepcopy(marked)
    five["system"][0]["text"] = GUIDE + " v2"
    five["system"][0]["cache_control"] = {"type": "ephemeral"}
    requests = [
        {"custom_id": "w1h", "params": marked},
        {"custom_id": "r1h", "params": marked},
        {"custom_id": "w5m", "params": five},
    ]
    client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    emu.advance(1)
    rows = {r.custom_id: r for r in emu.billing.rows()}
    mtok = Decimal(1_000_000)
    # Sonnet 4.6 per MTok: input 3, 5m write 3.75, 1h write 6, read 0.30, output 15; batch × 0.5
    w1h, r1h, w5m = rows["w1h"], rows["r1h"], rows["w5m"]
    assert w1h.usage["cache_creation"]["ephemeral_1h_input_tokens"] > 1024
    assert r1h.usage["cache_read_input_tokens"] == w1h.usage["cache_creation_input_tokens"]
    assert w1h.cost is not None and r1h.cost is not None and w5m.cost is not None
    one_h = w1h.usage["cache_creation"]["ephemeral_1h_input_tokens"]
    assert w1h.cost.cache_write_1h == one_h * Decimal(3) / mtok
    assert r1h.cost.cache_read == r1h.usage["cache_read_input_tokens"] * Decimal("0.15") / mtok
    five_m = w5m.usage["cache_creation"]["ephemeral_5m_input_tokens"]
    assert five_m > 1024
    assert w5m.cost.cache_write_5m == five_m * Decimal("1.875") / mtok
