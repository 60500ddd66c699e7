"""Disk used by the local workspace's state dir after N demo builds, before and after pruning:
``python -m bench.local_disk [--builds N]`` (default 100).

The demo build (``orchestrator build`` of the sample project in a fresh process, its R and
Python test notebooks in real kernels) runs N times against a local workspace process that
keeps every task's scratch folder, as the workspace did before runs' scratch was deleted when
they end (``keep_run_scratch``). Then ``orchestrator local prune`` runs with the defaults
(1000 runs, 60 days: only scratch that no active run owns goes) and with ``--keep-runs 10``.
With ``--compare``, the same N builds also run against a workspace with the default settings,
which deletes each task's scratch as it ends. The table gives the state dir's size and what
it is made of after each step.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.demo import build
from bench.kit.sample import copy_sample_project

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-local-disk-token"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Served:
    url: str
    token: str
    process: subprocess.Popen[str]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(120)


def _serve(state: Path, keep_scratch: bool) -> int:
    """The workspace process (``--serve``): prints its URL, runs until SIGTERM."""
    from bench.server import serve_until_signal
    from orchestrator.local.server import start_local_workspace

    ws = start_local_workspace(
        state, token=TOKEN, cluster_start_delay=0.0, keep_run_scratch=keep_scratch
    )
    return serve_until_signal(ws)


def start(state: Path, *, keep_scratch: bool) -> Served:
    argv = [sys.executable, "-m", "bench.local_disk", "--serve", str(state)]
    if keep_scratch:
        argv.append("--keep-scratch")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None
    return Served(json.loads(process.stdout.readline())["url"], TOKEN, process)


def _size(path: Path) -> int:
    from orchestrator.local.state.retention import tree_size

    return tree_size(path) if path.is_dir() else (path.stat().st_size if path.exists() else 0)


def measure(state: Path) -> dict[str, float]:
    runs = state / "runs"
    scratch = sum(_size(folder / "scratch") for folder in runs.iterdir()) if runs.is_dir() else 0
    database = sum(_size(p) for p in state.glob("state.db*"))
    from orchestrator.local.state.store import Store

    store = Store(state)
    try:
        kept = len(store.ended_runs())
    finally:
        store.close()
    return {
        "runs": kept,
        "total": _size(state) / MIB,
        "runs/": (_size(runs) - scratch) / MIB,
        "scratch": scratch / MIB,
        "workspace/": _size(state / "workspace") / MIB,
        "spark/": _size(state / "spark") / MIB,
        "state.db": database / MIB,
    }


def run_builds(state: Path, project: Path, count: int, *, keep_scratch: bool) -> tuple[float, int]:
    """Seconds the builds took and how many failed (a failed build still leaves its run)."""
    server = start(state, keep_scratch=keep_scratch)
    started = time.perf_counter()
    failed = 0
    try:
        for index in range(count):
            try:
                build(project, server, f"disk{index}")  # type: ignore[arg-type]
            except RuntimeError as exc:
                failed += 1
                print(f"build {index}: {str(exc).splitlines()[0]}", file=sys.stderr, flush=True)
            print(f"build {index + 1}/{count} done", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return time.perf_counter() - started, failed


def prune(state: Path, *flags: str) -> str:
    argv = [sys.executable, "-m", "orchestrator", "local", "prune", "--state-dir", str(state)]
    done = subprocess.run([*argv, *flags], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def render(rows: list[tuple[str, dict[str, float]]]) -> str:
    columns = ["runs", "total", "runs/", "scratch", "workspace/", "spark/", "state.db"]
    head = "| state dir | " + " | ".join(c if c == "runs" else f"{c} MiB" for c in columns) + " |"
    lines = [head, "|---|" + "---:|" * len(columns)]
    for label, values in rows:
        cells = [f"{int(values[c])}" if c == "runs" else f"{values[c]:.1f}" for c in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_disk")
    parser.add_argument("--builds", type=int, default=100, help="demo builds to run (100)")
    parser.add_argument("--compare", action="store_true", help="also run with the defaults")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep-scratch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return _serve(args.serve, args.keep_scratch)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    with tempfile.TemporaryDirectory(prefix="bench-local-disk-") as tmp:
        root = Path(tmp)
        project = copy_sample_project(root / "project")
        state = root / "kept"
        seconds, failed = run_builds(state, project, args.builds, keep_scratch=True)
        n = args.builds
        rows = [(f"after {n} builds, scratch kept (as before)", measure(state))]
        notes = [prune(state)]
        rows.append(("after `local prune` (defaults: 1000 runs, 60 days)", measure(state)))
        notes.append(prune(state, "--keep-runs", "10"))
        rows.append(("after `local prune --keep-runs 10`", measure(state)))
        if args.compare:
            fresh = root / "default"
            run_builds(fresh, project, n, keep_scratch=False)
            rows.append((f"after {n} builds, default settings", measure(fresh)))
        print(f"{n} demo builds ({failed} failed) in {seconds:.0f} s; state dir (MiB, files):\n")
        print(render(rows))
        print()
        for note in notes:
            print(f"- {note.split(': ', 1)[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
