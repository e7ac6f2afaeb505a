"""Workloads in virtual time, billed by the cachewise emulator under four caching strategies.

Strategies:

* ``planner``   — cachewise's CachePlanner (counts through the emulator's count_tokens,
  learns from each response with ``observe``);
* ``none``      — no cache_control at all;
* ``automatic`` — Anthropic's automatic caching (top-level ``cache_control``);
* ``static``    — a marker on the last system block and on the last message block.

Each (workload, strategy) runs on a fresh emulator; the virtual clock is advanced to
each call's time, and the planner reads the same clock. The billed total comes from
the emulator's bill. Run::

    .venv/bin/python benchmarks/planner_workloads.py [--scale 3] [--server]

``--server`` goes over real HTTP (``EmulatorServer``) instead of the in-process transport.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
import httpx2

from cachewise.emulator import Emulator, EmulatorServer, EmulatorTransport
from cachewise.planner import CachePlanner
from cachewise.tokens import TokenCounter, TokenMemo

__all__ = ["STRATEGIES", "WORKLOADS", "Call", "Result", "Workload", "markdown", "run", "run_all"]

STRATEGIES = ("planner", "none", "automatic", "static")
MODEL = "claude-sonnet-4-6"


@dataclass(frozen=True, slots=True)
class Call:
    at: float  # seconds since the workload's start
    request: dict[str, Any]


@dataclass(slots=True)
class Workload:
    name: str
    description: str
    calls: list[Call] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Result:
    workload: str
    strategy: str
    total: Decimal
    input_cost: Decimal  # the total without output: what caching can change
    requests: int
    count_calls: int
    seconds: float


# -- text ---------------------------------------------------------------------------------------

_WORDS = [
    "cache",
    "prefix",
    "token",
    "model",
    "write",
    "read",
    "price",
    "time",
    "plan",
    "tool",
    "user",
    "reply",
    "system",
    "document",
    "section",
    "clause",
    "policy",
    "ledger",
    "budget",
    "invoice",
    "account",
    "region",
    "report",
    "metric",
    "latency",
    "service",
    "request",
    "answer",
    "context",
    "example",
    "label",
    "review",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _doc(rng: random.Random, words: int, title: str) -> dict[str, Any]:
    return {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": _text(rng, words)},
        "title": title,
    }


# -- workloads ----------------------------------------------------------------------------------


def chat_long_system(scale: int, seed: int = 1) -> Workload:
    rng = random.Random(seed)
    system = _text(rng, 2400)
    w = Workload("chat", "multi-turn chat on a long system prompt (3 users)")
    for user in range(3):
        messages: list[dict[str, Any]] = []
        t = user * 7.0
        for turn in range(4 * scale):
            messages = [*messages, {"role": "user", "content": f"user {user} turn {turn}: " + _text(rng, 30)}]
            w.calls.append(
                Call(t, {"model": MODEL, "max_tokens": 64, "system": system, "messages": messages})
            )
            messages = [*messages, {"role": "assistant", "content": _text(rng, 60)}]
            t += rng.uniform(20, 90)
    return w


def document_qa(scale: int, seed: int = 2) -> Workload:
    rng = random.Random(seed)
    docs = [_doc(rng, 4000, f"contract {i}") for i in range(2)]
    w = Workload("document Q&A", "questions over two shared long documents")
    t = 0.0
    for q in range(8 * scale):
        doc = docs[q % 2]
        content = [doc, {"type": "text", "text": f"Question {q}: " + _text(rng, 25)}]
        w.calls.append(
            Call(
                t,
                {
                    "model": MODEL,
                    "max_tokens": 64,
                    "system": "Answer from the document only.",
                    "messages": [{"role": "user", "content": content}],
                },
            )
        )
        t += rng.uniform(15, 60)
    return w


_TOOLS = [
    {
        "name": name,
        "description": f"{name}: " + " ".join(_WORDS[i : i + 12]),
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    }
    for i, name in enumerate(("search", "fetch", "run_sql"))
]


def agent_tool_loop(scale: int, seed: int = 3) -> Workload:
    rng = random.Random(seed)
    system = _text(rng, 1500)
    w = Workload("agent loop", "agent tool loop adding 24 positions between calls")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Investigate: " + _text(rng, 40)}]
    t = 0.0
    step = 0
    for _ in range(5 * scale):
        w.calls.append(
            Call(
                t, {"model": MODEL, "max_tokens": 64, "system": system, "tools": _TOOLS, "messages": messages}
            )
        )
        for _ in range(6):  # 6 steps x 4 positions = 24 positions per call
            tid = f"toolu_{step:04d}"
            step += 1
            messages = [
                *messages,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": _text(rng, 12)},
                        {"type": "tool_use", "id": tid, "name": "search", "input": {"query": _text(rng, 4)}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": tid, "content": _text(rng, 120)},
                        {"type": "text", "text": "note " + _text(rng, 5)},
                    ],
                },
            ]
        t += rng.uniform(10, 40)
    return w


def few_shot(scale: int, seed: int = 4) -> Workload:
    rng = random.Random(seed)
    examples: list[dict[str, Any]] = []
    for i in range(8):
        examples.append({"role": "user", "content": f"Ticket {i}: " + _text(rng, 180)})
        examples.append({"role": "assistant", "content": rng.choice(["billing", "bug", "feature", "other"])})
    w = Workload("few-shot", "few-shot classification, shared examples, varying input")
    t = 0.0
    for n in range(10 * scale):
        messages = [*examples, {"role": "user", "content": f"Ticket new {n}: " + _text(rng, 40)}]
        w.calls.append(
            Call(t, {"model": MODEL, "max_tokens": 8, "system": "Classify the ticket.", "messages": messages})
        )
        t += rng.uniform(5, 40)
    return w


def sparse_large_context(scale: int, seed: int = 5) -> Workload:
    rng = random.Random(seed)
    system = _text(rng, 12000)
    w = Workload("sparse 20–40 min", "a large context reused every 20–40 minutes")
    t = 0.0
    for n in range(4 * scale):
        w.calls.append(
            Call(
                t,
                {
                    "model": MODEL,
                    "max_tokens": 32,
                    "system": system,
                    "messages": [{"role": "user", "content": f"Check {n}: " + _text(rng, 20)}],
                },
            )
        )
        t += rng.uniform(20 * 60, 40 * 60)
    return w


def tiny_prompts(scale: int, seed: int = 6) -> Workload:
    rng = random.Random(seed)
    w = Workload("tiny prompts", "short prompts far below every minimum")
    t = 0.0
    for n in range(10 * scale):
        w.calls.append(
            Call(
                t,
                {
                    "model": MODEL,
                    "max_tokens": 16,
                    "system": "Be brief.",
                    "messages": [{"role": "user", "content": f"q{n} " + _text(rng, 10)}],
                },
            )
        )
        t += rng.uniform(1, 30)
    return w


def many_tenants(scale: int, seed: int = 7) -> Workload:
    rng = random.Random(seed)
    # (period seconds, words of system prompt): from busy to single-use.
    tenants = [(30.0, 1800), (120.0, 2500), (600.0, 2000), (1500.0, 3000), (5400.0, 2200), (99999.0, 2600)]
    horizon = 3600.0 * scale
    w = Workload("many tenants", "six tenants, one call per 30 s … once, own system prompts")
    calls: list[Call] = []
    for k, (period, words) in enumerate(tenants):
        system = f"Tenant {k}. " + _text(rng, words)
        t = rng.uniform(0, min(period, 120))
        n = 0
        while t < horizon:
            calls.append(
                Call(
                    t,
                    {
                        "model": MODEL,
                        "max_tokens": 16,
                        "system": system,
                        "messages": [{"role": "user", "content": f"t{k} q{n}: " + _text(rng, 15)}],
                    },
                )
            )
            t += period * rng.uniform(0.8, 1.2)
            n += 1
    w.calls = sorted(calls, key=lambda c: c.at)
    return w


def model_mix(scale: int, seed: int = 8) -> Workload:
    rng = random.Random(seed)
    models = (
        "claude-opus-5",
        "claude-sonnet-4-6",
        "claude-opus-4-7",
        "claude-haiku-4-5",
    )  # 512/1024/2048/4096
    w = Workload("model mix", "chat on four models with minimums 512–4096 (prompts ~700–2,000 tokens)")
    calls: list[Call] = []
    for k, model in enumerate(models):
        system = _text(rng, 500 + 450 * k)
        messages: list[dict[str, Any]] = []
        t = float(k)
        for turn in range(3 * scale):
            messages = [*messages, {"role": "user", "content": f"m{k} turn {turn}: " + _text(rng, 20)}]
            calls.append(Call(t, {"model": model, "max_tokens": 32, "system": system, "messages": messages}))
            messages = [*messages, {"role": "assistant", "content": _text(rng, 40)}]
            t += rng.uniform(20, 60)
    w.calls = sorted(calls, key=lambda c: c.at)
    return w


WORKLOADS: tuple[Callable[[int], Workload], ...] = (
    chat_long_system,
    document_qa,
    agent_tool_loop,
    few_shot,
    sparse_large_context,
    tiny_prompts,
    many_tenants,
    model_mix,
)


# -- strategies ---------------------------------------------------------------------------------


def _static(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    marker = {"type": "ephemeral"}
    system = out.get("system")
    if isinstance(system, str) and system:
        out["system"] = [{"type": "text", "text": system, "cache_control": marker}]
    messages = [dict(m) for m in out["messages"]]
    last = messages[-1]
    content = last["content"]
    if isinstance(content, str):
        last["content"] = [{"type": "text", "text": content, "cache_control": marker}]
    else:
        last["content"] = [*content[:-1], {**content[-1], "cache_control": marker}]
    out["messages"] = messages
    return out


@contextmanager
def _client(emulator: Emulator, server: bool) -> Iterator[anthropic.Anthropic]:
    if server:
        with EmulatorServer(emulator) as running:
            client = anthropic.Anthropic(api_key="bench", base_url=running.base_url, max_retries=0)
            try:
                yield client
            finally:
                client.close()
    else:
        http = httpx2.Client(transport=EmulatorTransport(emulator))
        client = anthropic.Anthropic(
            api_key="bench", base_url="http://emulator.local", http_client=http, max_retries=0
        )
        try:
            yield client
        finally:
            client.close()


def run(workload: Workload, strategy: str, *, server: bool = False) -> Result:
    """Replay ``workload`` under ``strategy`` on a fresh emulator; return the billed total."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; pick one of {', '.join(STRATEGIES)}")
    emulator = Emulator()
    started = time.perf_counter()
    start = emulator.now()
    with _client(emulator, server) as client:
        counter = TokenCounter(client, memo=TokenMemo(None))
        planner = CachePlanner(counter, book=emulator.book, clock=emulator.now)
        for call in workload.calls:
            lag = call.at - (emulator.now() - start).total_seconds()
            if lag > 0:
                emulator.advance(lag)
            body = call.request
            plan = None
            if strategy == "planner":
                plan = planner.plan(body)
                body = plan.request
            elif strategy == "automatic":
                body = {**body, "cache_control": {"type": "ephemeral"}}
            elif strategy == "static":
                body = _static(body)
            message = client.messages.create(**body)
            if plan is not None:
                planner.observe(plan, message.usage, emulator.now())
    rows = emulator.billing.rows()
    input_cost = sum((r.cost.total - r.cost.output for r in rows if r.cost is not None), Decimal(0))
    return Result(
        workload.name,
        strategy,
        emulator.bill_total(),
        input_cost,
        len(workload.calls),
        counter.calls,
        time.perf_counter() - started,
    )


def run_all(scale: int = 1, *, server: bool = False) -> list[list[Result]]:
    return [[run(make(scale), s, server=server) for s in STRATEGIES] for make in WORKLOADS]


def markdown(rows: list[list[Result]]) -> str:
    """Two tables: the emulator's billed totals, and the input side (total minus output).

    The emulator's reply, hence its output tokens, depends on the request bytes, so the
    output part differs slightly between strategies; caching only changes the input side,
    and the percentages compare that.
    """
    head = "| workload | calls | planner | no caching | automatic | static |"
    rule = "|---|---:|---:|---:|---:|---:|"
    billed = ["Billed total (emulator bill):", "", head, rule]
    inputs = [
        "Input side (bill minus output), and the planner against the others:",
        "",
        head + " planner vs none | vs automatic | vs static | count_tokens calls/request |",
        rule + "---:|---:|---:|---:|",
    ]
    for results in rows:
        by = {r.strategy: r for r in results}
        name, calls = results[0].workload, by["planner"].requests
        totals = " | ".join(f"${by[k].total:.4f}" for k in STRATEGIES)
        billed.append(f"| {name} | {calls} | {totals} |")
        side = {k: by[k].input_cost for k in STRATEGIES}
        cells = " | ".join(f"${side[k]:.4f}" for k in STRATEGIES)

        def vs(other: str, side: dict[str, Decimal] = side) -> str:
            return f"{(side['planner'] - side[other]) / side[other]:+.0%}" if side[other] else "—"

        per = by["planner"].count_calls / max(1, calls)
        inputs.append(
            f"| {name} | {calls} | {cells} | {vs('none')} | {vs('automatic')} | {vs('static')} | {per:.2f} |"
        )
    return "\n".join([*billed, "", *inputs])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=int, default=3, help="workload size multiplier (default 3)")
    parser.add_argument("--server", action="store_true", help="run over real HTTP with EmulatorServer")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run_all(args.scale, server=args.server)
    print(markdown(rows))
    print(
        f"\n(scale {args.scale}; {time.perf_counter() - started:.1f} s; "
        f"{'EmulatorServer over HTTP' if args.server else 'in-process EmulatorTransport'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
