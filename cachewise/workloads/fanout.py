"""Fan-out traffic: waves of parallel jobs on one shared long prefix, for the fan-out benchmark.

:func:`fanout_jobs` is a :class:`~cachewise.workloads.Workload` whose calls come in waves: every
call of a wave has the same ``at``, and a driver that replays concurrently (:func:`waves` groups
them) sends them together, as a job runner fanning out over a shared system prompt and document
does. Waves are 10 minutes apart, past the 5-minute TTL, so each wave starts on a cold prefix
unless a 1h entry survives. Seeded: the same arguments give the same calls.
"""

from __future__ import annotations

import random
from itertools import groupby
from typing import Any

from .script import Call, Workload
from .text import words

__all__ = ["WAVE_GAP", "fanout_jobs", "waves"]

MODEL = "claude-sonnet-4-6"
WAVE_GAP = 600.0  # seconds between waves


def fanout_jobs(scale: int, seed: int = 13, *, width: int = 8, count: int = 3) -> Workload:
    """``count`` waves of ``width * scale`` parallel jobs; each wave shares a system prompt and a
    document (a new document every wave) and each job asks its own question."""
    rng = random.Random(seed)
    system = "You extract obligations from contracts. " + words(rng, 1800)
    calls: list[Call] = []
    for wave in range(count):
        document = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": words(rng, 3500)},
            "title": f"contract {wave}",
        }
        for job in range(width * scale):
            question = {"type": "text", "text": f"Job {wave}.{job}: " + words(rng, 20)}
            request: dict[str, Any] = {
                "model": MODEL,
                "max_tokens": 32,
                "system": system,
                "messages": [{"role": "user", "content": [document, question]}],
            }
            calls.append(Call(wave * WAVE_GAP, request))
    return Workload.of("fan-out", f"{count} waves of {width * scale} parallel jobs on a shared prefix", calls)


def waves(workload: Workload) -> list[tuple[float, list[dict[str, Any]]]]:
    """The workload's calls grouped by time: ``(at, requests)`` per wave, in order."""
    return [(at, [c.request for c in group]) for at, group in groupby(workload.calls(), key=lambda c: c.at)]
