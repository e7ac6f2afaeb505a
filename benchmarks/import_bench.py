"""What ``import cachewise`` costs beyond the SDK: cold imports in fresh interpreters, same run.

    python benchmarks/import_bench.py [--repeats 9]

Each repeat starts one fresh interpreter per variant, in turn (so load on the machine hits all
alike): ``python -c pass`` (the interpreter alone), ``import anthropic`` and ``import cachewise``.
JSON: the median wall time of each, the import times with the interpreter's own start-up taken
out, and the ratio cachewise / anthropic (goal: at most 1.15; cachewise imports the SDK itself).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "interpreter": "pass",
    "anthropic": "import anthropic",
    "cachewise": "import cachewise",
}


def once(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="fresh interpreters per variant")
    args = parser.parse_args()
    for code in VARIANTS.values():
        once(code)  # warm the file-system cache and the bytecode caches
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, code in VARIANTS.items():
            times[name].append(once(code))
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["interpreter"]
    sdk, ours = median["anthropic"] - base, median["cachewise"] - base
    print(
        json.dumps(
            {
                "repeats": args.repeats,
                "median_seconds": {name: round(value, 4) for name, value in median.items()},
                "import_seconds": {"anthropic": round(sdk, 4), "cachewise": round(ours, 4)},
                "ratio_cachewise_to_anthropic": round(ours / sdk, 3),
                "goal": 1.15,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
