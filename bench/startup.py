"""Start-up time of the CLI: ``orchestrator --help`` and ``orchestrator plan``.

Run: ``.venv/bin/python -m bench.startup [--runs 7]`` (also a scenario of ``python -m bench``).
Each command runs in a fresh interpreter (as CI runs it); prints median, min and max wall time
against the targets (0.3 s and 1 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from bench.harness import LEGACY, Context, Row
from bench.paths import REPO

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


def time_command(argv: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=REPO, check=True, capture_output=True, env=env)
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


def run(ctx: Context) -> list[Row]:
    """Rows for ``python -m bench``: both commands, and the legacy CLI's own start-up."""
    rows = []
    for name, (argv, target) in COMMANDS.items():
        times = time_command(argv, ctx.runs)
        row = Row("start-up", f"`{name}`", times, target=f"≤ {target:g} s")
        row.verdict = "met" if row.median <= target else "MISSED"
        row.result = f"{row.median / target:.2f}x of the target"
        rows.append(row)
    if ctx.legacy is not None:
        legacy = ctx.legacy
        times = time_command(legacy.argv("--version"), ctx.runs, env=legacy.env())
        rows.append(
            Row("start-up", f"{LEGACY} `databricks --version`", times, result="paid per command")
        )
    return rows
