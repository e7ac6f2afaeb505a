"""Deterministic filler text for workloads: the same seed gives the same words, run after run.

Two vocabularies, because two sets of published figures were measured on them and must not move:
:func:`words` (the planner suite, benchmarks and tests) draws from a shared ``random.Random``;
:func:`paragraphs` (the demo's afternoon) seeds its own generator from a string and writes sentences.
"""

from __future__ import annotations

import random

__all__ = ["VOCABULARY", "paragraphs", "words"]

VOCABULARY: tuple[str, ...] = (
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
)

_PROSE: tuple[str, ...] = (
    "account",
    "billing",
    "contract",
    "customer",
    "delivery",
    "device",
    "engineer",
    "feature",
    "invoice",
    "license",
    "manual",
    "network",
    "operator",
    "order",
    "policy",
    "product",
    "refund",
    "region",
    "release",
    "request",
    "schedule",
    "section",
    "service",
    "setting",
    "shipment",
    "support",
    "system",
    "term",
    "ticket",
    "update",
    "user",
    "warranty",
    "window",
    "agreement",
    "clause",
    "notice",
    "payment",
    "renewal",
    "liability",
    "data",
    "retention",
    "audit",
    "backup",
    "cluster",
    "deploy",
    "incident",
    "latency",
    "metric",
)


def words(rng: random.Random, count: int) -> str:
    """``count`` words of :data:`VOCABULARY`, drawn from ``rng`` (which advances)."""
    return " ".join(rng.choice(VOCABULARY) for _ in range(count))


def paragraphs(seed: str, count: int) -> str:
    """About ``count`` words of sentence-like text, the same for the same seed."""
    rng = random.Random(seed)
    out: list[str] = []
    sentence: list[str] = []
    for _ in range(count):
        sentence.append(rng.choice(_PROSE))
        if len(sentence) >= rng.randint(8, 16):
            out.append(" ".join(sentence).capitalize() + ".")
            sentence = []
    if sentence:
        out.append(" ".join(sentence).capitalize() + ".")
    return " ".join(out)
