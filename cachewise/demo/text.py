"""Deterministic filler text for the demo: manuals, contracts and tool output that read like prose."""

from __future__ import annotations

import random

__all__ = ["paragraphs"]

_WORDS = [
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
]


def paragraphs(seed: str, words: int) -> str:
    """About ``words`` words of sentence-like text, the same for the same seed."""
    rng = random.Random(seed)
    out: list[str] = []
    sentence: list[str] = []
    for _ in range(words):
        sentence.append(rng.choice(_WORDS))
        if len(sentence) >= rng.randint(8, 16):
            out.append(" ".join(sentence).capitalize() + ".")
            sentence = []
    if sentence:
        out.append(" ".join(sentence).capitalize() + ".")
    return " ".join(out)
