"""Traffic the planner was not tuned on (issue 13): pooled documents in bursts, very large contexts,
long agent sessions with context edits, chat with pauses, and callers who place their own markers.

Each factory takes ``scale`` and ``seed`` like the rest of :data:`~cachewise.workloads.SUITE` and
returns the same requests for the same arguments; none reads the replies. docs/workloads.md
describes each shape and why it is hard for a planner that learns only from the past.
"""

from __future__ import annotations

import random
from typing import Any

from .script import Call, Workload
from .text import words

__all__ = [
    "UNSEEN",
    "agent_sessions",
    "caller_markers",
    "chat_with_pauses",
    "doc_pool_bursts",
    "huge_contexts",
]

MODEL = "claude-sonnet-4-6"


def _text_doc(rng: random.Random, count: int, title: str) -> dict[str, Any]:
    return {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": words(rng, count)},
        "title": title,
    }


def doc_pool_bursts(scale: int, seed: int = 11) -> Workload:
    """A pool of twelve documents, three or four drawn per request, in bursts separated by idle gaps.

    Each burst has a topic document that leads most of its requests (so ``system + topic`` is
    shared within the burst); the documents after it are drawn by popularity, so a pair recurs
    now and then and a whole combination almost never. Bursts of 4–10 requests a few seconds apart
    are separated by 8–50 minutes of silence, so a topic coming back may still be cached for an
    hour but never for five minutes.
    """
    rng = random.Random(seed)
    pool = [_text_doc(rng, rng.randint(1500, 3200), f"handbook {i}") for i in range(12)]
    weights = [1.0 / (1 + i) for i in range(len(pool))]  # a few popular documents, a long tail
    system = "Answer from the documents only, and name the document you quote. " + words(rng, 40)
    calls: list[Call] = []
    t = 0.0
    for _burst in range(4 * scale):
        topic = rng.choices(range(len(pool)), weights)[0]
        for q in range(rng.randint(4, 10)):
            picked = [topic] if rng.random() < 0.75 else []
            while len(picked) < rng.choice((3, 3, 4)):
                d = rng.choices(range(len(pool)), weights)[0]
                if d not in picked:
                    picked.append(d)
            content = [*(pool[d] for d in picked), {"type": "text", "text": f"Q{q}: " + words(rng, 20)}]
            calls.append(
                Call(
                    t,
                    {
                        "model": MODEL,
                        "max_tokens": 64,
                        "system": system,
                        "messages": [{"role": "user", "content": content}],
                    },
                )
            )
            t += rng.uniform(1, 15)
        t += rng.uniform(8 * 60, 50 * 60)
    return Workload.of(
        "document pool, bursts", "3–4 of 12 pooled documents a request, bursts and idle gaps", calls
    )


def huge_contexts(scale: int, seed: int = 12) -> Workload:
    """Three contexts of about 150k, 190k and 230k tokens, each reused minutes to an hour apart.

    Gaps per context are drawn from a mix: a quarter under 5 minutes, half 5–40 minutes, a
    quarter 40–70 minutes (some outlive even the 1-hour TTL).
    """
    rng = random.Random(seed)
    # About 1.84 emulator tokens a vocabulary word.
    contexts = [f"Repository {k}. " + words(rng, n) for k, n in enumerate((81_000, 103_000, 125_000))]
    calls: list[Call] = []
    for k, context in enumerate(contexts):
        t = 30.0 * k
        for n in range(3 * scale):
            question = f"Change request {k}.{n}: " + words(rng, 30)
            calls.append(
                Call(
                    t,
                    {
                        "model": MODEL,
                        "max_tokens": 64,
                        "system": context,
                        "messages": [{"role": "user", "content": question}],
                    },
                )
            )
            roll = rng.random()
            if roll < 0.25:
                t += rng.uniform(30, 290)
            elif roll < 0.75:
                t += rng.uniform(5 * 60, 40 * 60)
            else:
                t += rng.uniform(40 * 60, 70 * 60)
    return Workload.of(
        "contexts of 150k–230k",
        "three very large contexts reused minutes to an hour apart",
        sorted(calls, key=lambda c: c.at),
    )


_AGENT_TOOLS = [
    {
        "name": name,
        "description": f"{name.replace('_', ' ')}: " + text,
        "input_schema": {"type": "object", "properties": {"arg": {"type": "string"}}, "required": ["arg"]},
    }
    for name, text in (
        ("read_file", "read one file of the repository"),
        ("grep", "search the repository for a pattern"),
        ("run_tests", "run the test suite and report failures"),
        ("edit_file", "replace a span of a file"),
    )
]
_CLEARED = "[tool result cleared to save context]"


def _session(rng: random.Random, k: int, turns: int, start: float) -> list[Call]:
    """One agent session: wide turns, pauses, and context edits that clear old tool results."""
    system = f"Coding agent {k}. " + words(rng, 1800)
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"Task {k}: " + words(rng, 60)}]
    calls: list[Call] = []
    t, step, since_edit = start, 0, 0
    for _turn in range(turns):
        calls.append(
            Call(
                t,
                {
                    "model": MODEL,
                    "max_tokens": 64,
                    "system": system,
                    "tools": _AGENT_TOOLS,
                    "messages": messages,
                },
            )
        )
        width = rng.choice((1, 1, 2, 3, 4, 6))  # parallel tool calls in one assistant turn
        uses, results = [], []
        for _ in range(width):
            tid = f"toolu_{k}_{step:05d}"
            step += 1
            tool = rng.choice(_AGENT_TOOLS)["name"]
            uses.append({"type": "tool_use", "id": tid, "name": tool, "input": {"arg": words(rng, 3)}})
            results.append(
                {"type": "tool_result", "tool_use_id": tid, "content": words(rng, rng.randint(60, 360))}
            )
        messages = [
            *messages,
            {"role": "assistant", "content": [{"type": "text", "text": words(rng, 15)}, *uses]},
            {"role": "user", "content": results},
        ]
        since_edit += 1
        if since_edit >= 12:
            # Context editing: every tool result but the last four turns' is cleared. The
            # prefix now changes at the first result cleared this time: early in the history.
            since_edit = 0
            keep = len(messages) - 8
            messages = [
                {
                    **m,
                    "content": [
                        {**b, "content": _CLEARED} if b.get("type") == "tool_result" else b
                        for b in m["content"]
                    ],
                }
                if i < keep and m["role"] == "user" and isinstance(m["content"], list)
                else m
                for i, m in enumerate(messages)
            ]
        # Mostly seconds between turns; now and then the user is away for a while.
        t += rng.uniform(6 * 60, 40 * 60) if rng.random() < 0.08 else rng.uniform(3, 25)
    return calls


def agent_sessions(scale: int, seed: int = 13) -> Workload:
    """Two coding-agent sessions of 30 × ``scale`` turns each (wide turns, pauses, context edits)."""
    rng = random.Random(seed)
    calls = [*_session(rng, 0, 30 * scale, 0.0), *_session(rng, 1, 30 * scale, 400.0)]
    return Workload.of(
        "long agent sessions",
        "two agents, wide turns, pauses, old tool results cleared every 12 turns",
        sorted(calls, key=lambda c: c.at),
    )


def chat_with_pauses(scale: int, seed: int = 14) -> Workload:
    """Four users chatting on one system prompt; a third of their gaps are 6–40 minute pauses."""
    rng = random.Random(seed)
    system = words(rng, 2200)
    calls: list[Call] = []
    for user in range(4):
        messages: list[dict[str, Any]] = []
        t = user * 11.0
        for turn in range(5 * scale):
            messages = [*messages, {"role": "user", "content": f"user {user} turn {turn}: " + words(rng, 40)}]
            calls.append(Call(t, {"model": MODEL, "max_tokens": 64, "system": system, "messages": messages}))
            messages = [*messages, {"role": "assistant", "content": words(rng, 80)}]
            t += rng.uniform(6 * 60, 40 * 60) if rng.random() < 0.33 else rng.uniform(10, 60)
    return Workload.of(
        "chat with pauses",
        "four users on one system prompt, a third of the gaps 6–40 min",
        sorted(calls, key=lambda c: c.at),
    )


def caller_markers(scale: int, seed: int = 15) -> Workload:
    """Two callers who mark their own prompts (the planner keeps their markers and adds its own).

    * a support bot marks its system prompt (5m) and sends a long product manual as the first
      user turn of each chat, unmarked;
    * an analyst tool marks the last block of each request (5m) and asks about one of two
      long reports every 2–9 minutes.
    """
    rng = random.Random(seed)
    marker = {"type": "ephemeral"}
    system = [{"type": "text", "text": "Support assistant. " + words(rng, 600), "cache_control": marker}]
    manual = _text_doc(rng, 3000, "manual")
    calls: list[Call] = []
    for user in range(3):
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": [manual, {"type": "text", "text": f"user {user}: " + words(rng, 30)}]}
        ]
        t = user * 40.0
        for turn in range(4 * scale):
            calls.append(Call(t, {"model": MODEL, "max_tokens": 64, "system": system, "messages": messages}))
            messages = [
                *messages,
                {"role": "assistant", "content": words(rng, 70)},
                {"role": "user", "content": f"user {user} turn {turn}: " + words(rng, 25)},
            ]
            t += rng.uniform(15, 120)
    reports = [_text_doc(rng, 2600, f"report {i}") for i in range(2)]
    t = 5.0
    for n in range(6 * scale):
        question = {
            "type": "text",
            "text": f"Analyst question {n}: " + words(rng, 20),
            "cache_control": marker,
        }
        content = [reports[n % 2], question]
        calls.append(
            Call(
                t,
                {
                    "model": MODEL,
                    "max_tokens": 64,
                    "system": "Quote the report.",
                    "messages": [{"role": "user", "content": content}],
                },
            )
        )
        t += rng.uniform(2 * 60, 9 * 60)
    return Workload.of(
        "caller's own markers",
        "a bot that marks its system prompt, a tool that marks its last block",
        sorted(calls, key=lambda c: c.at),
    )


UNSEEN = (doc_pool_bursts, huge_contexts, agent_sessions, chat_with_pauses, caller_markers)
