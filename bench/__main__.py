"""``python -m bench``: every scenario, ours beside the legacy databricks-cli 0.18.0, one table.

Run as root (the legacy CLI reaches the local workspace only on port 80, see bench/legacy.py):

    .venv/bin/python -m bench            # the full run (each figure: median of 5 runs)
    .venv/bin/python -m bench --quick    # fewer and shorter runs, a smoke test (prints only)
    .venv/bin/python -m bench --only deploy completion   # prints only

Every scenario runs against the local workspace with 20 ms of injected latency per API request.
The table is printed and written, with the machine's details and the date, between the markers
of docs/benchmarks.md (the notes around them are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bench.harness import Context, Row, machine, render_table
from bench.legacy import LegacyCli, LegacyUnavailable, install
from bench.paths import REPO
from bench.server import Server

SCENARIOS = ("deploy", "upload", "completion", "cleanup", "startup", "demo", "memory", "big")
#: scenario -> bench module, where they differ
MODULES = {"cleanup": "cleanup_builds", "big": "big_repo"}
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

log = logging.getLogger("bench")


@contextlib.contextmanager
def session(args: argparse.Namespace, scratch: Path) -> Iterator[Context]:
    token = "bench-" + secrets.token_hex(8)
    legacy: LegacyCli | None = None
    problem = ""
    try:
        exe = install()
    except LegacyUnavailable as exc:
        exe, problem = None, str(exc)
    state = scratch / "workspace"
    try:
        server = Server.start(state, token=token, port=80, latency_ms=args.latency_ms)
    except OSError as exc:
        problem = problem or f"cannot listen on 127.0.0.1:80 ({exc}); run as root"
        server = Server.start(state, token=token, latency_ms=args.latency_ms)
    else:
        if exe is not None:
            config = scratch / "databrickscfg"
            config.write_text("")  # empty: host and token come from the environment
            legacy = LegacyCli(exe, "http://127.0.0.1", token, config)
    ctx: Context | None = None
    try:
        ctx = Context(
            runs=args.runs,
            quick=args.quick,
            latency_ms=args.latency_ms,
            workspace=server,
            legacy=legacy,
            legacy_problem=problem,
            scratch=scratch,
            token=token,
        )
        yield ctx
    finally:
        for extra in ctx.servers if ctx else []:
            extra.stop()
        server.stop()


def write_doc(
    table: str, details: dict[str, str], elapsed: float, args: argparse.Namespace, load: str
) -> None:
    runs = f"{args.runs} runs per figure" + (" (--quick)" if args.quick else "")
    block = "\n".join(
        [
            BEGIN,
            f"Measured {details['date']} with `python -m bench{' --quick' if args.quick else ''}`"
            f" ({runs}, {args.latency_ms:.0f} ms injected per request, "
            f"{elapsed / 60:.1f} min in all).",
            "",
            f"Machine: {details['cpus']} CPUs, {details['ram']} RAM, {details['python']}, "
            f"{details['os']}. Load average (1 min) at the start and the end: {load}.",
            "",
            table,
            END,
        ]
    )
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs, shorter runs")
    parser.add_argument("--runs", type=int, help="runs per figure (default 5, 3 with --quick)")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, help="these scenarios only")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--no-write", action="store_true", help="print only (always so with --only, --quick)"
    )
    args = parser.parse_args(argv)
    args.runs = args.runs or (3 if args.quick else 5)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    results: dict[str, list[Row]] = {}
    names = [n for n in SCENARIOS if n in (args.only or SCENARIOS)]
    with (
        tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as tmp,
        session(args, Path(tmp)) as ctx,
        ThreadPoolExecutor(1) as background,
    ):
        if ctx.legacy is None:
            print(f"legacy CLI not run: {ctx.legacy_problem}", file=sys.stderr)
        slow: Future[list[Row]] | None = None
        if "cleanup" in names:  # mostly waiting on its rate limit: beside the others
            from bench.cleanup_builds import rate_limited

            slow = background.submit(rate_limited(ctx))  # its builds are made first
        for name in names:
            module = importlib.import_module(f"bench.{MODULES.get(name, name)}")
            t0 = time.monotonic()
            print(f"-- {name} ...", file=sys.stderr, flush=True)
            results[name] = module.run(ctx)
            print(f"   {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
        if slow is not None:
            print("-- cleanup at the default rate (background) ...", file=sys.stderr, flush=True)
            results["cleanup"] += slow.result()
        notes = list(ctx.notes)
    rows = [row for name in names for row in results[name]]
    table = render_table(rows)
    if notes:
        table += "\n\n" + "\n".join(f"- {n}" for n in notes)
    print(table)
    if not (args.no_write or args.only or args.quick):  # only a full run replaces the table
        load = f"{load_start:.1f} and {os.getloadavg()[0]:.1f}"
        write_doc(table, machine(), time.monotonic() - started, args, load)
        print(f"\nwritten to {DOC.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
