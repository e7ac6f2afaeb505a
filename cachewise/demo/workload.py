"""The demo's traffic, in virtual time: what a small team's Claude usage looks like in an afternoon.

Each workload drives an ``anthropic`` client (wrapped or not) and advances the
emulator's clock between calls. The requests are written as a user would write
them, with no ``cache_control`` anywhere: placing breakpoints is cachewise's job.

* ``support_chat``: four users chatting with a support bot on a long manual (Sonnet 4.6);
* ``document_qa``: analysts asking questions about two long contracts (Opus 4.6);
* ``agent_loop``: a coding agent whose turns add two dozen tool blocks each (Haiku 4.5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .text import paragraphs

__all__ = ["WORKLOADS", "Advance", "Workload"]

Advance = Callable[[float], object]


@dataclass(frozen=True)
class Workload:
    name: str
    model: str
    run: Callable[[Any, Advance], int]


MANUAL = "You are the support assistant for Acme Cloud. Answer from this manual.\n\n" + paragraphs(
    "manual", 3500
)
CONTRACTS = {name: paragraphs(f"contract-{name}", 9000) for name in ("master-services", "data-processing")}
AGENT_SYSTEM = (
    "You are a careful coding agent. Use the tools to inspect and fix the repository.\n"
    + paragraphs("agent-rules", 2500)
)
TOOLS: list[dict[str, Any]] = [
    {
        "name": name,
        "description": f"{name.replace('_', ' ')} in the repository",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    }
    for name in ("read_file", "list_directory", "run_tests")
]


def support_chat(client: Any, advance: Advance) -> int:
    conversations: dict[str, list[dict[str, Any]]] = {f"user-{i}": [] for i in range(4)}
    calls = 0
    for turn in range(5):
        for user, history in conversations.items():
            history.append(
                {"role": "user", "content": f"{user}, turn {turn}: " + paragraphs(f"{user}-{turn}", 40)}
            )
            reply = client.messages.create(
                model="claude-sonnet-4-6", max_tokens=120, system=MANUAL, messages=history
            )
            history.append({"role": "assistant", "content": reply.content})
            calls += 1
            advance(35)
    return calls


def document_qa(client: Any, advance: Advance) -> int:
    calls = 0
    for round_ in range(4):
        for name, text in CONTRACTS.items():
            question = f"Question {round_} about {name}: " + paragraphs(f"q-{name}-{round_}", 25)
            client.messages.create(
                model="claude-opus-4-6",
                max_tokens=200,
                system="You are a contracts analyst. Quote the clause you rely on.",
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "text", "media_type": "text/plain", "data": text},
                                "title": name,
                            },
                            {"type": "text", "text": question},
                        ],
                    }
                ],
            )
            calls += 1
            advance(90)
    return calls


def agent_loop(client: Any, advance: Advance) -> int:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Fix the failing test in the billing module."}
    ]
    calls = 0
    for turn in range(5):
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=300, system=AGENT_SYSTEM, tools=TOOLS, messages=history
        )
        calls += 1
        uses = [
            {
                "type": "tool_use",
                "id": f"toolu_{turn}_{i}",
                "name": TOOLS[i % 3]["name"],
                "input": {"path": f"src/billing/module_{turn}_{i}.py"},
            }
            for i in range(12)
        ]
        results = [
            {
                "type": "tool_result",
                "tool_use_id": f"toolu_{turn}_{i}",
                "content": paragraphs(f"out-{turn}-{i}", 150),
            }
            for i in range(12)
        ]
        history.append(
            {"role": "assistant", "content": [{"type": "text", "text": "Inspecting files."}, *uses]}
        )
        history.append({"role": "user", "content": [*results, {"type": "text", "text": "Continue."}]})
        advance(20)
    return calls


WORKLOADS: tuple[Workload, ...] = (
    Workload("support_chat", "claude-sonnet-4-6", support_chat),
    Workload("document_qa", "claude-opus-4-6", document_qa),
    Workload("agent_loop", "claude-haiku-4-5", agent_loop),
)
