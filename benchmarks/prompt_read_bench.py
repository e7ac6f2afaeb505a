"""Reading the load benchmark's bodies as cache positions (``Prompt``), warm memos, CPU per body.

Each body is a new parse of the load benchmark's request (a ~10k-token system block, a new user turn
per call), so the long block is a new ``dict`` every time, as in the proxy; the first body fills the
memos. Prints the thread CPU per body, next to ``json.loads`` of the same bytes measured in the same
run. To compare two checkouts, run each one's copy with its own virtualenv, taking turns::

    .venv/bin/python benchmarks/prompt_read_bench.py [--bodies 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from proxy_load_bench import _body, _system_prompt

from cachewise.prompt import Prompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    system = _system_prompt(10_000)
    raw = [json.dumps(_body(system, i, stream=False)).encode() for i in range(args.bodies)]
    Prompt(json.loads(raw[0]))
    print("| round | json.loads | Prompt |")
    print("|---:|---:|---:|")
    for round_ in range(args.rounds):
        bodies = [json.loads(data) for data in raw]
        began = time.thread_time()
        for data in raw:
            json.loads(data)
        loads = time.thread_time() - began
        began = time.thread_time()
        for body in bodies:
            Prompt(body)
        read = time.thread_time() - began
        n = len(raw)
        print(f"| {round_ + 1} | {loads / n * 1e6:.1f} µs | {read / n * 1e6:.1f} µs |", flush=True)


if __name__ == "__main__":
    main()
