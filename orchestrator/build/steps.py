"""The build's steps as commands of their own, with the same config as ``orchestrator build``:
``deploy``, ``run``, ``wait``, ``collect``, ``clean``.

They share a build through ``--build-id`` (and a run through ``--run-id``), so the workspace must
outlive each command: a configured host (or ``orchestrator local serve`` given as the host). The
embedded local workspace stops with the command, which would cancel a run, so ``run``, ``wait``
and ``collect`` refuse it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from orchestrator.adapters.databricks import RunView, platform_failure
from orchestrator.build.collect import collect_run
from orchestrator.build.flow import (
    PLATFORM_FAILED,
    at_home,
    await_run,
    check_git_access,
    check_used_commit,
    clean_build,
    deploy_build,
    prepare_cluster,
    register_step,
    secure_build_root,
    start_build_run,
)
from orchestrator.build.local_outputs import start_outputs
from orchestrator.build.plan import BuildPlan, BuildResult
from orchestrator.build.progress import Progress
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import EXIT_INFRA, EXIT_OK, EXIT_TESTS_FAILED, UsageError
from orchestrator.services import open_services
from orchestrator.signals import BuildCancelled, cancel_on_signals, shielded

__all__ = ["STEPS", "run_step"]

STEPS = ("deploy", "run", "wait", "collect", "clean")


def run_step(
    step: str,
    plan: BuildPlan,
    *,
    out: TextIO,
    environ: Mapping[str, str],
    run_id: int | None,
    scratch: Path,
    clock: Clock | None = None,
) -> BuildResult:
    clock = clock or SystemClock()
    if step in ("run", "wait", "collect") and plan.config.workspace.is_local:
        raise UsageError(
            f"orchestrator {step} needs a workspace that outlives the command: set "
            "workspace.host (for example to an `orchestrator local serve` URL) or use "
            "`orchestrator build`"
        )
    if step in ("wait", "collect") and run_id is None:
        raise UsageError(f"orchestrator {step} needs --run-id")
    progress = Progress(out, live=False)
    with (
        cancel_on_signals(grace=plan.config.timeouts.cancel_grace),
        open_services(plan.config, environ=environ, clock=clock) as (conn, storage),
    ):
        conn.workspace.retries.listen(progress.info)
        plan = at_home(plan, conn)
        if step == "deploy":
            start_outputs(plan, progress)
            check_git_access(plan, conn, progress=progress)
            secure_build_root(plan, conn, progress=progress)
            deploy_build(plan, conn, storage, progress=progress, scratch=scratch)
            return BuildResult(EXIT_OK, document={"build_folder": plan.build_folder})
        if step == "clean":
            with shielded():  # a signal takes effect once the folders are gone
                clean_build(plan, conn, storage, progress, deployed=True, uploaded=True)
            return BuildResult(EXIT_OK)
        if step == "run":
            prepare_cluster(plan, conn, progress=progress)
            new_id, url = start_build_run(plan, conn, progress=progress)
            return BuildResult(EXIT_OK, new_id, url, document={"run_id": new_id, "run_url": url})
        assert run_id is not None
        run: RunView | None = None
        try:
            if step == "wait":
                run, code = await_run(plan, conn, run_id, progress=progress)
                check_used_commit(plan, run)
                ok = run.end.result == "SUCCESS"
                return BuildResult(
                    _platform(run, code if code != EXIT_OK or ok else EXIT_TESTS_FAILED, progress),
                    run_id,
                    run.run_page_url,
                    document={"run_id": run_id, "result": run.end.result},
                )
            run = conn.workspace.get_run(run_id)
            collected = collect_run(
                conn.workspace, run, storage=storage, plan=plan, scratch=scratch, progress=progress
            )
            summary = collected.summary
            code = EXIT_OK if summary.ok and summary.tests > 0 else EXIT_TESTS_FAILED
            code = _platform(run, code, progress, collected.platform)
            code, registered = register_step(plan, conn, run, summary, code, progress)
            return BuildResult(
                code, run_id, run.run_page_url, summary, registered=tuple(registered)
            )
        except BuildCancelled as cancelled:
            if step == "wait":
                progress.step(f"cancelled by {cancelled}: cancelling run {run_id}")
                with contextlib.suppress(BuildCancelled), shielded():
                    conn.workspace.cancel_run(run_id)  # a second signal waits for this
            return BuildResult(cancelled.exit_code, run_id)


def _platform(run: RunView, code: int, progress: Progress, found: str | None = None) -> int:
    """Exit 3 instead of 0 or 1 when the platform, not the notebooks, ended the run (or a run
    one of its notebooks started: ``found`` by the collect step)."""
    reason = found or platform_failure(run)
    if reason is None or code not in (EXIT_OK, EXIT_TESTS_FAILED):
        return code
    progress.step(PLATFORM_FAILED.format(exit=EXIT_INFRA, reason=reason))
    return EXIT_INFRA


def describe(result: BuildResult) -> dict[str, Any]:
    return dict(result.document) | {"exit_code": result.exit_code}
