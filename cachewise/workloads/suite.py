"""The planner's suite: traffic shapes, each where some caching strategy wins or misses.

The first eight are defined here; :data:`~cachewise.workloads.unseen.UNSEEN` adds the shapes of issue 13
(pooled documents in bursts, very large contexts, long agent sessions, chat with pauses, callers'
own markers).

Each factory takes a ``scale`` (a size multiplier) and a ``seed`` and returns the same
:class:`~cachewise.workloads.Workload` for the same arguments. The requests never depend on the
replies, so a suite workload is a fixed list of timed calls. ``benchmarks/planner_workloads.py``
replays them under six strategies, two oracles among them (the README's "What the planner buys you"
table is its output at scale 3), and the planner tests replay small versions;
:func:`agent_conversation` is the single large request ``benchmarks/planner_bench.py`` times the
planner on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .script import Call, Workload
from .text import VOCABULARY, words
from .unseen import UNSEEN

__all__ = [
    "MODEL",
    "SUITE",
    "agent_conversation",
    "agent_tool_loop",
    "chat_long_system",
    "document_qa",
    "few_shot",
    "many_tenants",
    "model_mix",
    "sparse_large_context",
    "tiny_prompts",
]

MODEL = "claude-sonnet-4-6"


def _request(
    system: str, messages: list[dict[str, Any]], max_tokens: int, model: str = MODEL
) -> dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens, "system": system, "messages": messages}


def _user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def _spaced(
    rng: random.Random, count: int, gap: tuple[float, float], request: Callable[[int], dict[str, Any]]
) -> list[Call]:
    """``count`` calls from t=0: call ``n`` sends ``request(n)``; the next comes ``gap`` s later."""
    calls: list[Call] = []
    t = 0.0
    for n in range(count):
        calls.append(Call(t, request(n)))
        t += rng.uniform(*gap)
    return calls


def _doc(rng: random.Random, count: int, title: str) -> dict[str, Any]:
    return {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": words(rng, count)},
        "title": title,
    }


def chat_long_system(scale: int, seed: int = 1) -> Workload:
    rng = random.Random(seed)
    system = words(rng, 2400)
    calls: list[Call] = []
    for user in range(3):
        messages: list[dict[str, Any]] = []
        t = user * 7.0
        for turn in range(4 * scale):
            messages = [*messages, {"role": "user", "content": f"user {user} turn {turn}: " + words(rng, 30)}]
            calls.append(Call(t, _request(system, messages, 64)))
            messages = [*messages, {"role": "assistant", "content": words(rng, 60)}]
            t += rng.uniform(20, 90)
    return Workload.of("chat", "multi-turn chat on a long system prompt (3 users)", calls)


def document_qa(scale: int, seed: int = 2) -> Workload:
    rng = random.Random(seed)
    docs = [_doc(rng, 4000, f"contract {i}") for i in range(2)]

    def ask(q: int) -> dict[str, Any]:
        content = [docs[q % 2], {"type": "text", "text": f"Question {q}: " + words(rng, 25)}]
        return _request("Answer from the document only.", [_user(content)], 64)

    calls = _spaced(rng, 8 * scale, (15, 60), ask)
    return Workload.of("document Q&A", "questions over two shared long documents", calls)


_TOOLS = [
    {
        "name": name,
        "description": f"{name}: " + " ".join(VOCABULARY[i : i + 12]),
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
    system = words(rng, 1500)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Investigate: " + words(rng, 40)}]
    calls: list[Call] = []
    t = 0.0
    step = 0
    for _ in range(5 * scale):
        calls.append(
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
                        {"type": "text", "text": words(rng, 12)},
                        {"type": "tool_use", "id": tid, "name": "search", "input": {"query": words(rng, 4)}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": tid, "content": words(rng, 120)},
                        {"type": "text", "text": "note " + words(rng, 5)},
                    ],
                },
            ]
        t += rng.uniform(10, 40)
    return Workload.of("agent loop", "agent tool loop adding 24 positions between calls", calls)


def few_shot(scale: int, seed: int = 4) -> Workload:
    rng = random.Random(seed)
    examples: list[dict[str, Any]] = []
    for i in range(8):
        examples.append({"role": "user", "content": f"Ticket {i}: " + words(rng, 180)})
        examples.append({"role": "assistant", "content": rng.choice(["billing", "bug", "feature", "other"])})

    def classify(n: int) -> dict[str, Any]:
        return _request("Classify the ticket.", [*examples, _user(f"Ticket new {n}: " + words(rng, 40))], 8)

    calls = _spaced(rng, 10 * scale, (5, 40), classify)
    return Workload.of("few-shot", "few-shot classification, shared examples, varying input", calls)


def sparse_large_context(scale: int, seed: int = 5) -> Workload:
    rng = random.Random(seed)
    system = words(rng, 12000)

    def check(n: int) -> dict[str, Any]:
        return _request(system, [_user(f"Check {n}: " + words(rng, 20))], 32)

    calls = _spaced(rng, 4 * scale, (20 * 60, 40 * 60), check)
    return Workload.of("sparse 20–40 min", "a large context reused every 20–40 minutes", calls)


def tiny_prompts(scale: int, seed: int = 6) -> Workload:
    rng = random.Random(seed)

    def ask(n: int) -> dict[str, Any]:
        return _request("Be brief.", [_user(f"q{n} " + words(rng, 10))], 16)

    calls = _spaced(rng, 10 * scale, (1, 30), ask)
    return Workload.of("tiny prompts", "short prompts far below every minimum", calls)


def many_tenants(scale: int, seed: int = 7) -> Workload:
    rng = random.Random(seed)
    # (period seconds, words of system prompt): from busy to single-use.
    tenants = [(30.0, 1800), (120.0, 2500), (600.0, 2000), (1500.0, 3000), (5400.0, 2200), (99999.0, 2600)]
    horizon = 3600.0 * scale
    calls: list[Call] = []
    for k, (period, size) in enumerate(tenants):
        system = f"Tenant {k}. " + words(rng, size)
        t = rng.uniform(0, min(period, 120))
        n = 0
        while t < horizon:
            calls.append(Call(t, _request(system, [_user(f"t{k} q{n}: " + words(rng, 15))], 16)))
            t += period * rng.uniform(0.8, 1.2)
            n += 1
    return Workload.of(
        "many tenants",
        "six tenants, one call per 30 s … once, own system prompts",
        sorted(calls, key=lambda c: c.at),
    )


def model_mix(scale: int, seed: int = 8) -> Workload:
    rng = random.Random(seed)
    models = (
        "claude-opus-5",
        "claude-sonnet-4-6",
        "claude-opus-4-7",
        "claude-haiku-4-5",
    )  # 512/1024/2048/4096
    calls: list[Call] = []
    for k, model in enumerate(models):
        system = words(rng, 500 + 450 * k)
        messages: list[dict[str, Any]] = []
        t = float(k)
        for turn in range(3 * scale):
            messages = [*messages, {"role": "user", "content": f"m{k} turn {turn}: " + words(rng, 20)}]
            calls.append(Call(t, _request(system, messages, 32, model)))
            messages = [*messages, {"role": "assistant", "content": words(rng, 40)}]
            t += rng.uniform(20, 60)
    return Workload.of(
        "model mix",
        "chat on four models with minimums 512–4096 (prompts ~700–2,000 tokens)",
        sorted(calls, key=lambda c: c.at),
    )


SUITE: tuple[Callable[[int], Workload], ...] = (
    chat_long_system,
    document_qa,
    agent_tool_loop,
    few_shot,
    sparse_large_context,
    tiny_prompts,
    many_tenants,
    model_mix,
    *UNSEEN,
)


#: The benchmark's words: the vocabulary's first twelve but "time" (its timings were measured on them).
_AGENT_WORDS = [word for word in VOCABULARY[:12] if word != "time"]


def agent_conversation(blocks: int) -> dict[str, Any]:
    """One agent conversation of about ``blocks`` content blocks (text, tool_use, tool_result)."""
    vocab = _AGENT_WORDS
    messages: list[dict[str, Any]] = [{"role": "user", "content": "start " + " ".join(vocab * 20)}]
    n, k = 1, 0
    while n < blocks:
        tid = f"toolu_{k:05d}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"step {k} " + " ".join(vocab[: 3 + k % 8])},
                    {
                        "type": "tool_use",
                        "id": tid,
                        "name": "search",
                        "input": {"q": vocab[k % len(vocab)], "n": k},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tid, "content": " ".join(vocab * (2 + k % 5))},
                    {"type": "text", "text": f"note {k}"},
                ],
            }
        )
        n += 4
        k += 1
    return {
        "model": MODEL,
        "max_tokens": 100,
        "system": " ".join(vocab * 300),
        "messages": messages,
    }
