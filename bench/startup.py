"""Start-up time of the CLI: ``orchestrator --help`` and ``orchestrator plan``.

Run: ``.venv/bin/python -m bench.startup [--runs 7]``. Each command runs in a fresh interpreter
(as CI runs it); prints median, min and max wall time against the targets (0.3 s and 1 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "orchestrator --help": ([sys.executable, "-m", "orchestrator", "--help"], 0.3),
    "orchestrator plan": (
        [
            sys.executable,
            "-m",
            "orchestrator",
            "plan",
            "--build-id",
            "bench",
            "--repo-name",
            "bench",
        ],
        1.0,
    ),
}


def time_command(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print("| command | median s | min s | max s | target s | |")
    print("|---|---:|---:|---:|---:|---|")
    for name, (argv, target) in COMMANDS.items():
        times = time_command(argv, args.runs)
        median = statistics.median(times)
        verdict = "met" if median <= target else "MISSED"
        low, high = min(times), max(times)
        print(f"| `{name}` | {median:.3f} | {low:.3f} | {high:.3f} | {target} | {verdict} |")


if __name__ == "__main__":
    main()
