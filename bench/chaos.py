"""The chaos suite: many builds of the sample against a faulty local workspace, some of them
losing their workspace mid-run. ``python -m bench.chaos [--builds 50] [--parallel 4]``.

- N builds (default 50), ``--parallel`` at a time (default 4), each in a fresh copy of the sample
  project (bench/kit/sample.py) sharing one storage root, against a local workspace in its own
  process (bench/server.py) answering 10% of API requests 429, 10% 503, dropping 5% of
  connections and adding 5 ms to each (``/local-admin/faults``).
- Every ``--kill-every``-th build (default 10) runs on a workspace of its own, which is
  SIGKILLed as soon as the build's run exists and restarted on the same port and state dir (the
  other builds are not hit by it).
- The workspace token is the builds' secret: an env var referenced from the config
  (``workspace.token=env:...``), a random value grepped for in every output afterwards.

Then, with the faults off: the runs each build started (exactly 1), runs still active (0), a
final ``orchestrator cleanup --older-than 0s`` and the build folders and prefixes left (0 besides
the reserved ``_`` names), processes left under the scratch folder after the workspaces stopped
(0), and the secret in any output (0). It prints one table and exits 1 when a check fails.

The exit code a lost workspace should give is read from README's exit-code table: 3 when its
row for 3 names the platform (issue 14, item 4), else 1 (the code before that change).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from databricks.sdk.errors import NotFound

from bench.kit.sample import (
    REPO,
    REPO_NAME,
    command,
    copy_sample_project,
    in_subprocess,
    workspace_flags,
)
from bench.server import Server
from orchestrator.layout import parse_build_job_name

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

FAULTS = {"latency_ms": 5.0, "p429": 0.10, "p503": 0.10, "p_drop": 0.05}
TOKEN_ENV = "CHAOS_WORKSPACE_TOKEN"
BUILD_ROOT = "orchestrator-builds"  # the sample's build root: ~/orchestrator-builds
BUILD_TIMEOUT = 900.0


def platform_exit() -> int:
    """The exit code of a build whose workspace was lost: 3 once README's row for 3 names the
    platform or the adapter tells platform failures apart (issue 14, item 4), else 1."""
    from orchestrator.adapters.databricks import runs

    text = (REPO / "README.md").read_text(encoding="utf-8")
    row = next((line for line in text.splitlines() if line.startswith("| 3 |")), "")
    documented = re.search(r"platform|lost|INTERNAL_ERROR", row, re.IGNORECASE) is not None
    return 3 if documented or hasattr(runs, "PLATFORM_LIFE_CYCLES") else 1


@dataclass
class Workspace:
    """A bench server and where it keeps its state; restarted on the same port after a kill."""

    state: Path
    token: str
    server: Server
    kills: int = 0

    @classmethod
    def start(cls, state: Path, token: str, *, port: int = 0) -> Workspace:
        server = Server.start(state, token=token, port=port, latency_ms=0.0)
        server.set_faults(FAULTS)
        return cls(state, token, server)

    @property
    def url(self) -> str:
        return self.server.url

    def kill_and_restart(self) -> None:
        port = int(self.url.rsplit(":", 1)[1])
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait()
        self.kills += 1
        for _ in range(50):  # the port may linger for a moment
            try:
                self.server = Workspace.start(self.state, self.token, port=port).server
                return
            except OSError:
                time.sleep(0.2)
        raise OSError(f"the workspace did not restart on port {port}")

    def client(
        self, *, retry_timeout_seconds: int | None = None, http_timeout: int | None = None
    ) -> WorkspaceClient:
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.config import Config

        config = Config(host=self.url, token=self.token, auth_type="pat")
        if retry_timeout_seconds is not None:
            config.retry_timeout_seconds = retry_timeout_seconds
        if http_timeout is not None:
            config.http_timeout_seconds = http_timeout
        return WorkspaceClient(config=config)


@dataclass
class Outcome:
    number: int
    build_id: str
    workspace: Workspace
    expected: int
    code: int = -1
    output: str = ""
    seconds: float = 0.0
    killed: bool = False
    killer_polls: int = 0  # polls of the killer that found no active run
    killer_error: str | None = None  # the last one that failed, and why


@dataclass
class Chaos:
    scratch: Path
    token: str
    storage: Path
    shared: Workspace
    outcomes: list[Outcome] = field(default_factory=list)
    extra: list[Workspace] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "CI"))}
        env.update({TOKEN_ENV: self.token, "TF_BUILD": "", "GITHUB_ACTIONS": ""})
        return env

    def flags(self, ws: Workspace) -> list[str]:
        return [
            *workspace_flags(ws.url, f"env:{TOKEN_ENV}"),
            "--set",
            f"storage.root={self.storage}",
        ]


def _kill_when_running(chaos: Chaos, outcome: Outcome, done: threading.Event) -> None:
    """SIGKILL the build's workspace as soon as its run exists, then restart it. The poll gives
    up on an injected fault at once (a short retry budget) and polls again: the SDK's own
    backoff could sleep past a short run, and the kill would never come."""
    client = None
    while not done.is_set():
        try:
            # made in the loop: a failure to make it is retried like any other, and each
            # request waits at most 5 s (the SDK's 60 s could outlast a short run)
            client = client or outcome.workspace.client(retry_timeout_seconds=1, http_timeout=5)
            active = list(client.jobs.list_runs(active_only=True))
        except Exception as exc:  # noqa: BLE001 - faults and restarts: try again
            outcome.killer_error = f"{type(exc).__name__}: {exc}"[:300]
            active = []
        if active:
            outcome.workspace.kill_and_restart()
            outcome.killed = True
            return
        outcome.killer_polls += 1
        done.wait(0.1)


def run_build(chaos: Chaos, outcome: Outcome) -> Outcome:
    project = copy_sample_project(chaos.scratch / "projects" / outcome.build_id)
    argv = command(
        project, "build", "--build-id", outcome.build_id, *chaos.flags(outcome.workspace)
    )
    done = threading.Event()
    killer = None
    if outcome.workspace is not chaos.shared:
        killer = threading.Thread(target=_kill_when_running, args=(chaos, outcome, done))
        killer.start()
    started = time.monotonic()
    try:
        result = subprocess.run(
            in_subprocess(*argv),
            cwd=project,
            env=chaos.env(),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
        outcome.code, outcome.output = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired as exc:
        outcome.code, outcome.output = -9, f"timed out after {exc.timeout} s"
    finally:
        done.set()
        if killer is not None:
            killer.join()
    outcome.seconds = time.monotonic() - started
    log = chaos.scratch / "outputs" / f"{outcome.build_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(outcome.output, encoding="utf-8")
    return outcome


def run_builds(chaos: Chaos, *, builds: int, parallel: int, kill_every: int) -> None:
    platform = platform_exit()
    for number in range(1, builds + 1):
        ws = chaos.shared
        expected = 0
        if kill_every and number % kill_every == 0:
            ws = Workspace.start(chaos.scratch / f"workspace-{number}", chaos.token)
            chaos.extra.append(ws)
            expected = platform
        chaos.outcomes.append(Outcome(number, f"chaos-{number:03d}", ws, expected))
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        list(pool.map(lambda o: run_build(chaos, o), chaos.outcomes))


# -- the checks --------------------------------------------------------------------------------


def runs_by_build(ws: Workspace) -> tuple[Counter[str], int]:
    """Runs each build id started in this workspace, and the runs still active."""
    client = ws.client()
    started: Counter[str] = Counter()
    for run in client.jobs.list_runs():
        parsed = parse_build_job_name(run.run_name or "")  # a build's job carries its build id
        started[parsed[1] if parsed else "None"] += 1
    return started, len(list(client.jobs.list_runs(active_only=True)))


def final_cleanup(chaos: Chaos, ws: Workspace) -> tuple[int, list[str]]:
    """``orchestrator cleanup --older-than 0s``; then the non-reserved folders left."""
    project = copy_sample_project(chaos.scratch / "projects" / "_cleanup")
    argv = command(project, "cleanup", *chaos.flags(ws), "--older-than", "0s", repo_name=None)
    result = subprocess.run(
        in_subprocess(*argv),
        cwd=project,
        env=chaos.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    chaos.outcomes[0].output += result.stdout + result.stderr  # grepped for the secret too
    client = ws.client()
    repo = f"/Users/{client.current_user.me().user_name}/{BUILD_ROOT}/{REPO_NAME}"
    try:
        listed = list(client.workspace.list(repo))
    except NotFound:  # no build left a folder
        listed = []
    left = [str(o.path) for o in listed if o.path and not o.path.rsplit("/", 1)[1].startswith("_")]
    return result.returncode, left


def storage_left(storage: Path) -> list[str]:
    folder = storage / REPO_NAME
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def orphans(scratch: Path) -> list[str]:
    """Processes whose working directory or command line is under the scratch folder."""
    import psutil

    found = []
    me = psutil.Process()
    mine = {me.pid, *(p.pid for p in me.parents())}  # whoever started this (a shell, timeout)
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        info = proc.info
        text = " ".join([info.get("cwd") or "", *(info.get("cmdline") or [])])
        if info["pid"] not in mine and str(scratch) in text:
            found.append(f"{info['pid']} {text[:120]}")
    return found


def secrets_found(chaos: Chaos) -> list[str]:
    hits = [f"build {o.build_id} output" for o in chaos.outcomes if chaos.token in o.output]
    for root in (chaos.scratch / "projects", chaos.storage):
        for path in root.rglob("*"):
            if path.is_file() and ".orchestrator" not in path.parts:
                data = path.read_bytes()
                if chaos.token.encode() in data:
                    hits.append(str(path.relative_to(chaos.scratch)))
    return hits


@dataclass
class Check:
    name: str
    expected: str
    found: str
    ok: bool
    detail: list[str] = field(default_factory=list)


def _killer(o: Outcome) -> str:
    """What the killer of a build that should have lost its workspace saw, when it did not."""
    if o.expected != 3 or o.killed:
        return ""
    polls = f"{o.killer_polls} polls without an active run"
    return f" (never killed: {polls}; last error {o.killer_error})"


def exit_checks(chaos: Chaos) -> list[Check]:
    """Builds by exit code, against what each should have been."""
    checks = []
    by_expected: dict[int, list[Outcome]] = {}
    for o in chaos.outcomes:
        by_expected.setdefault(o.expected, []).append(o)
    for expected, outcomes in sorted(by_expected.items()):
        codes = Counter(o.code for o in outcomes)
        wrong = [o for o in outcomes if o.code != expected]
        what = "lost workspace (killed)" if expected else "clean"
        checks.append(
            Check(
                f"builds {what}: exit codes",
                f"{len(outcomes)} x {expected}",
                ", ".join(f"{n} x {code}" for code, n in sorted(codes.items())),
                not wrong,
                [f"{o.build_id}: exit {o.code}{_killer(o)}\n{o.output[-1500:]}" for o in wrong[:3]],
            )
        )
    return checks


def workspace_checks(chaos: Chaos) -> list[Check]:
    started: Counter[str] = Counter()
    active = 0
    for ws in [chaos.shared, *chaos.extra]:
        ws.server.set_faults({})
        counts, live = runs_by_build(ws)
        started.update(counts)
        active += live
    wrong = [o.build_id for o in chaos.outcomes if started[o.build_id] != 1]
    per = Counter(started[o.build_id] for o in chaos.outcomes)
    left: list[str] = []
    codes = []
    for ws in [chaos.shared, *chaos.extra]:
        code, folders = final_cleanup(chaos, ws)
        codes.append(code)
        left += folders
    left += [f"storage {REPO_NAME}/{name}" for name in storage_left(chaos.storage)]
    found = ", ".join(f"{n} builds x {k}" for k, n in sorted(per.items()))
    return [
        Check("runs started per build", "1 each", found, not wrong, wrong),
        Check("runs left active", "0", str(active), active == 0),
        Check(
            "folders left after cleanup --older-than 0s",
            "0 (and cleanup exit 0)",
            f"{len(left)} (cleanup exit {sorted(set(codes))})",
            not left and set(codes) == {0},
            left,
        ),
    ]


def render(checks: list[Check], chaos: Chaos, seconds: float) -> str:
    times = sorted(o.seconds for o in chaos.outcomes) or [0.0]
    lines = [
        f"chaos: {len(chaos.outcomes)} builds, {sum(o.killed for o in chaos.outcomes)} "
        f"workspace kills, faults {FAULTS}, {seconds:.0f} s in all; a build took "
        f"{times[len(times) // 2]:.0f} s (median), {times[-1]:.0f} s at most; lost workspace "
        f"expected to exit {platform_exit()}",
        "",
        "| check | expected | found | ok |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {c.name} | {c.expected} | {c.found} | {'yes' if c.ok else 'NO'} |" for c in checks
    ]
    for c in checks:
        lines += [f"\n{c.name}: {d}" for d in c.detail[:5]] if not c.ok else []
    return "\n".join(lines)


def chaos_run(scratch: Path, *, builds: int, parallel: int, kill_every: int) -> tuple[bool, str]:
    started = time.monotonic()
    token = "chaos-" + secrets.token_hex(16)
    storage = scratch / "storage"
    chaos = Chaos(scratch, token, storage, Workspace.start(scratch / "workspace", token))
    try:
        run_builds(chaos, builds=builds, parallel=parallel, kill_every=kill_every)
        checks = exit_checks(chaos) + workspace_checks(chaos)
    finally:
        for ws in [chaos.shared, *chaos.extra]:
            ws.server.stop()
    time.sleep(1.0)  # kernels of a clean stop are gone by now; what is left is an orphan
    left = orphans(scratch)
    checks.append(Check("orphan processes", "0", str(len(left)), not left, left))
    leaks = secrets_found(chaos)
    checks.append(Check("secrets found in any output", "0", str(len(leaks)), not leaks, leaks))
    return all(c.ok for c in checks), render(checks, chaos, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--builds", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--kill-every", type=int, default=10, help="0: no workspace kills")
    parser.add_argument("--scratch", type=Path, help="kept afterwards (default: a temp dir)")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="chaos-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        ok, table = chaos_run(
            scratch.resolve(),
            builds=args.builds,
            parallel=args.parallel,
            kill_every=args.kill_every,
        )
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
