"""The demo's traffic: what a small team's Claude usage looks like in an afternoon.

* ``support_chat``: four users chatting with a support bot on a long manual (Sonnet 4.6); each
  assistant turn is the reply the model actually gave, so this script reads its replies;
* ``document_qa``: analysts asking questions about two long contracts (Opus 4.6);
* ``agent_loop``: a coding agent whose turns add two dozen tool blocks each (Haiku 4.5).

``cachewise demo`` replays them one after another, without and with cachewise.
"""

from __future__ import annotations

from typing import Any

from .script import Call, Script, Workload
from .text import paragraphs

__all__ = ["AFTERNOON", "TOOLS", "agent_loop", "document_qa", "support_chat"]

TOOLS: list[dict[str, Any]] = [
    {
        "name": name,
        "description": f"{name.replace('_', ' ')} in the repository",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    }
    for name in ("read_file", "list_directory", "run_tests")
]


def _manual() -> str:
    return "You are the support assistant for Acme Cloud. Answer from this manual.\n\n" + paragraphs(
        "manual", 3500
    )


def _support_chat() -> Script:
    manual = _manual()
    conversations: dict[str, list[dict[str, Any]]] = {f"user-{i}": [] for i in range(4)}
    t = 0.0
    for turn in range(5):
        for user, history in conversations.items():
            history.append(
                {"role": "user", "content": f"{user}, turn {turn}: " + paragraphs(f"{user}-{turn}", 40)}
            )
            reply = yield Call(
                t, {"model": "claude-sonnet-4-6", "max_tokens": 120, "system": manual, "messages": history}
            )
            history.append({"role": "assistant", "content": reply.content})
            t += 35
    return t


def _document_qa() -> Script:
    contracts = {
        name: paragraphs(f"contract-{name}", 9000) for name in ("master-services", "data-processing")
    }
    t = 0.0
    for round_ in range(4):
        for name, text in contracts.items():
            question = f"Question {round_} about {name}: " + paragraphs(f"q-{name}-{round_}", 25)
            yield Call(
                t,
                {
                    "model": "claude-opus-4-6",
                    "max_tokens": 200,
                    "system": "You are a contracts analyst. Quote the clause you rely on.",
                    "messages": [
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
                },
            )
            t += 90
    return t


def _agent_loop() -> Script:
    system = (
        "You are a careful coding agent. Use the tools to inspect and fix the repository.\n"
        + paragraphs("agent-rules", 2500)
    )
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Fix the failing test in the billing module."}
    ]
    t = 0.0
    for turn in range(5):
        yield Call(
            t,
            {
                "model": "claude-haiku-4-5",
                "max_tokens": 300,
                "system": system,
                "tools": TOOLS,
                "messages": history,
            },
        )
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
        t += 20
    return t


support_chat = Workload(
    "support_chat", "four users chatting with a support bot on a long manual (Sonnet 4.6)", _support_chat
)
document_qa = Workload(
    "document_qa", "analysts asking questions about two long contracts (Opus 4.6)", _document_qa
)
agent_loop = Workload(
    "agent_loop", "a coding agent whose turns add two dozen tool blocks each (Haiku 4.5)", _agent_loop
)

AFTERNOON: tuple[Workload, ...] = (support_chat, document_qa, agent_loop)
