"""Could a plan memo serve the proxy? How often a memo key repeats, and whether the plan is then the same.

A plan memo would hand a request the plan made for an earlier one when the planner's inputs are the
same: the key considered is the request's bytes (a hash of the whole body, so of every prefix
segment) and the reuse statistics' version (``ReuseStats._version``, bumped by every recorded
arrival and every window closing). This bench plans a stream of requests with the proxy's planner (counting
through the in-process emulator, as in ``proxy_stages_bench.py``) and reports, per traffic:

* ``version_key_repeats``: plans whose (body, version) key an earlier plan had, and
  ``version_key_wrong``: how many of those fresh plans differ from that earlier plan (``planned_at``
  aside), the times a memo keyed so would have handed out a plan that fresh planning does not make;
* ``body_key_repeats`` / ``body_key_wrong``: the same with the body alone as the key (a memo blind
  to the statistics).

Traffics: ``bench`` is the load benchmark's (one ~10k-token system prompt, a new user turn per
call, each recorded); ``retries`` sends each of those three times, the repeats planned with
``record=False`` as the tracker plans an SDK retry (the statistics' version does not move then);
``fleet`` mixes three system prompts and returns to earlier user turns (one in four calls repeats
one of the last 20). Run::

    .venv/bin/python benchmarks/plan_memo_bench.py [--requests 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from proxy_load_bench import _body, _system_prompt

from cachewise.emulator import Emulator
from cachewise.emulator.transport import AsyncEmulatorTransport
from cachewise.integrations.proxy_planner import caller_headers, upstream_planner
from cachewise.planner import Plan

HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _traffic(name: str, requests: int) -> list[tuple[dict[str, Any], bool]]:
    """``(body, record)`` pairs of one traffic."""
    system = _system_prompt(10_000)
    if name == "bench":
        return [(_body(system, i, stream=False), True) for i in range(requests)]
    if name == "retries":
        return [(_body(system, i // 3, stream=False), i % 3 == 0) for i in range(requests)]
    rng = random.Random(17)
    systems = [_system_prompt(2_000 + 3_000 * k) for k in range(3)]
    out: list[tuple[dict[str, Any], bool]] = []
    for i in range(requests):
        turn = rng.randrange(max(1, i - 20), i + 1) if i and rng.random() < 0.25 else i
        out.append((_body(systems[turn % 3], turn, stream=False), True))
    return out


def _body_key(body: dict[str, Any]) -> str:
    """A hash of the whole body: its prefix segments (every cache position's bytes) and the rest."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _comparable(plan: Plan) -> Plan:
    """The plan as a memo could hand it out again: its ``planned_at`` is the new request's own."""
    return dataclasses.replace(plan, planned_at=_EPOCH)


async def _study(name: str, requests: int) -> dict[str, Any]:
    planner = upstream_planner("http://emulator", transport=AsyncEmulatorTransport(Emulator()))
    by_version: dict[tuple[str, int], Plan] = {}
    by_body: dict[str, Plan] = {}
    version_hits = version_wrong = body_hits = body_wrong = 0
    for body, record in _traffic(name, requests):
        key = _body_key(body)
        versioned = (key, planner.stats._version)
        with caller_headers(HEADERS):
            plan = _comparable(await planner.aplan(body, record=record))
        earlier = by_version.get(versioned)
        if earlier is not None:
            version_hits += 1
            version_wrong += earlier != plan
        looser = by_body.get(key)
        if looser is not None:
            body_hits += 1
            body_wrong += looser != plan
        by_version[versioned] = by_body[key] = plan
    await planner.aclose()
    return {
        "traffic": name,
        "plans": requests,
        "version_key_repeats": version_hits,
        "version_key_wrong": version_wrong,
        "body_key_repeats": body_hits,
        "body_key_wrong": body_wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500)
    args = parser.parse_args()
    for name in ("bench", "retries", "fleet"):
        print(json.dumps(asyncio.run(_study(name, args.requests))), flush=True)


if __name__ == "__main__":
    main()
