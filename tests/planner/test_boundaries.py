"""Document boundaries: their offline size bounds, and how nested prefixes value each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cachewise.planner import CachePlanner, Plan
from cachewise.planner.candidates import Candidate, Kind
from cachewise.planner.valuation import nest
from cachewise.prompt import Prompt, Ttl
from tests.fixtures.planning import VirtualClock
from tests.planner.test_planner import usage_for
from tests.strategies import words

DOC = words(1500)


def text_document(data: str, title: str = "handbook") -> dict[str, Any]:
    return {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": data},
        "title": title,
    }


def pdf_document(data: str) -> dict[str, Any]:
    return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}}


def ask(*blocks: dict[str, Any]) -> dict[str, Any]:
    content = [*blocks, {"type": "text", "text": "Which section covers refunds?"}]
    return {
        "model": "claude-test",
        "max_tokens": 50,
        "system": "Quote the documents.",
        "messages": [{"role": "user", "content": content}],
    }


def test_a_text_documents_data_counts_towards_its_lower_bound_and_a_payload_does_not() -> None:
    squeezed = len("".join(DOC.split()).encode())
    text = Prompt(ask(text_document(DOC))).positions[1]
    pdf = Prompt(ask(pdf_document(DOC))).positions[1]
    assert text.kind == pdf.kind == "document"
    assert text.text_bytes >= squeezed
    assert pdf.text_bytes < 64  # the title-less payload: only its short type strings


def test_offline_a_long_text_document_is_marked_by_its_bounds_alone(
    make_planner: Callable[..., CachePlanner],
) -> None:
    plan = make_planner(counter=None).plan(ask(text_document(DOC)))
    assert "messages.0.content.0" in [b.path for b in plan.breakpoints]
    assert plan.count_calls == 0


def _cand(index: int, kind: Kind, values: dict[Ttl, float], live: Ttl | None = None) -> Candidate:
    prompt = Prompt(ask(*(text_document(DOC, f"d{i}") for i in range(4))))
    cand = Candidate(prompt.position(index), kinds=[kind], values=dict(values), live=live)
    cand.why = {ttl: "own" for ttl in values}
    return cand


def test_a_shallower_boundary_is_worth_at_least_the_deepest_new_write_through_it() -> None:
    cands = {
        1: _cand(1, "large document", {"5m": 0.1, "1h": -0.5}),
        2: _cand(2, "large document", {"5m": -0.2, "1h": 0.4}),
        3: _cand(3, "large document", {"5m": 0.3, "1h": -0.9}),
    }
    nest(cands)
    assert cands[3].values == {"5m": 0.3, "1h": -0.9}  # nothing deeper
    assert cands[2].values == {"5m": 0.3, "1h": 0.4}
    assert cands[1].values == {"5m": 0.3, "1h": 0.4}
    assert "deeper new write at [3]" in cands[1].why["5m"]
    assert "deeper new write at [2]" in cands[1].why["1h"]


def test_nesting_leaves_live_entries_the_tail_and_fixed_markers_alone() -> None:
    live = _cand(1, "large document", {"5m": 0.05}, live="5m")
    fixed = _cand(2, "large document", {"5m": 0.0})
    fixed.fixed, fixed.fixed_ttl = "caller", "5m"
    shallow = _cand(3, "large document", {"5m": -0.1, "1h": -0.6})
    tail = _cand(4, "conversation tail", {"5m": 0.9, "1h": 0.9})
    cands = {1: live, 2: fixed, 3: shallow, 4: tail}
    nest(cands)
    assert live.values == {"5m": 0.05}
    assert fixed.values == {"5m": 0.0}
    # The tail's prior (the next turn) says nothing of the documents before it.
    assert shallow.values == {"5m": -0.1, "1h": -0.6}
    assert tail.values == {"5m": 0.9, "1h": 0.9}


def test_a_pair_seen_once_before_is_not_written_for_an_hour_until_it_recurs_again(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    # Two documents asked about every 30 minutes: the first document (depth 0) seen again after
    # a gap is written for an hour at once; the pair after it (depth 1) must recur twice first,
    # since one recurrence of a combination says little about the next.
    planner = make_planner()
    first, second = text_document(words(1500, 1), "a"), text_document(words(1500, 2), "b")
    ttls: list[dict[str, str]] = []
    for q in range(3):
        request = ask(first, second)
        request["messages"][0]["content"][-1]["text"] = f"question {q}"
        plan = planner.plan(request)
        planner.observe(plan, usage_for(plan))
        ttls.append({b.path: b.ttl for b in plan.breakpoints})
        clock.advance(30 * 60)
    assert ttls[1] == {"messages.0.content.0": "1h"}
    assert ttls[2] == {"messages.0.content.0": "1h", "messages.0.content.1": "1h"}


def _first_sight_ttl(planner: CachePlanner, clock: VirtualClock, *, come_back: bool) -> str | None:
    """Three documents, each asked about twice in a burst and (``come_back``) once more 20
    minutes later; then the TTL of a fourth document's first breakpoint, at first sight."""
    for k in range(3):
        doc = text_document(words(1500, 10 + k), f"doc {k}")
        for pause in (0, 30, 20 * 60 if come_back else None):
            if pause is None:
                continue
            clock.advance(pause)
            request = ask(doc)
            request["messages"][0]["content"][-1]["text"] = f"question {k} {pause}"
            plan = planner.plan(request)
            planner.observe(plan, usage_for(plan))
        clock.advance(2 * 3600)
    plan = planner.plan(ask(text_document(words(1500, 99), "new")))
    return {b.path: b.ttl for b in plan.breakpoints}.get("messages.0.content.0")


def test_a_new_document_is_written_for_an_hour_where_documents_come_back_after_pauses(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    assert _first_sight_ttl(make_planner(), clock, come_back=True) == "1h"


def test_a_new_document_is_written_for_five_minutes_where_none_came_back(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    assert _first_sight_ttl(make_planner(), clock, come_back=False) == "5m"


def _new_pair_ttls(planner: CachePlanner, clock: VirtualClock) -> dict[str, str]:
    """Four pairs of documents, each asked about twice in a burst and again 20 minutes later (so
    pairs never seen before recur, within five minutes and after them); then the breakpoints of a
    fifth pair at first sight."""
    for k in range(4):
        pair = (text_document(words(1500, 20 + k), f"a{k}"), text_document(words(1500, 40 + k), f"b{k}"))
        for n, pause in enumerate((0, 30, 20 * 60)):
            clock.advance(pause)
            request = ask(*pair)
            request["messages"][0]["content"][-1]["text"] = f"question {k} {n}"
            plan = planner.plan(request)
            planner.observe(plan, usage_for(plan))
        clock.advance(2 * 3600)
    new = (text_document(words(1500, 98), "x"), text_document(words(1500, 99), "y"))
    plan = planner.plan(ask(*new))
    return {b.path: b.ttl for b in plan.breakpoints}


def test_a_combination_never_seen_before_is_not_written_for_an_hour(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    # Every earlier pair recurred within five minutes and came back after twenty: the new pair is
    # worth a write, but its hour waits for its own gaps; the first document (a document seen
    # alone, not a combination) still gets the hour its kind has earned.
    ttls = _new_pair_ttls(make_planner(), clock)
    assert ttls.get("messages.0.content.1") == "5m"
    assert ttls.get("messages.0.content.0") == "1h"


def _seen_triple_ttl(planner: CachePlanner, clock: VirtualClock) -> str | None:
    """Busy traffic of triples of documents that never recur, one triple among them seen once
    before (ten minutes earlier); the TTL of that triple's third document boundary now."""
    seen = tuple(text_document(words(1500, 60 + i), f"t{i}") for i in range(3))

    def send(*docs: dict[str, Any], text: str) -> Plan:
        request = ask(*docs)
        request["messages"][0]["content"][-1]["text"] = text
        plan = planner.plan(request)
        planner.observe(plan, usage_for(plan))
        return plan

    send(*seen, text="first sight")
    for k in range(20):
        clock.advance(30)
        send(*(text_document(words(1500, 100 + 3 * k + i), f"n{k}.{i}") for i in range(3)), text=f"q{k}")
    plan = send(*seen, text="second sight")
    return {b.path: b.ttl for b in plan.breakpoints}.get("messages.0.content.2")


def test_the_rest_of_a_combination_seen_before_leans_on_how_often_combinations_recur(
    make_planner: Callable[..., CachePlanner], clock: VirtualClock
) -> None:
    # The family is seen every 30 seconds, but its triples never recur: a triple seen once, ten
    # minutes ago, is not written again on the strength of the family's own reuse.
    assert _seen_triple_ttl(make_planner(), clock) is None
