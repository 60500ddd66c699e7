"""The build's commands as library calls: ``plan``/``render``, ``build`` and the step commands
(``deploy``, ``run``, ``wait``, ``collect``, ``clean``).

Each takes the command's options and streams, prints what the command prints and returns the
exit code; the CLI only parses arguments. Warnings of the plan (job fields the snapshot does not
know) go to stderr as CI annotations; ``--json`` output on stdout stays one JSON document.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from orchestrator.build.flow import execute
from orchestrator.build.model_registration import versions_document
from orchestrator.build.plan import BuildOptions, BuildPlan, BuildResult, plan_document, prepare
from orchestrator.build.steps import describe, run_step
from orchestrator.errors import EXIT_OK
from orchestrator.layout import LOCAL_SERVE_PORT, LOCAL_STATE_DIR
from orchestrator.results.publish import publish, publish_models, publish_warning, to_json

__all__ = [
    "Invocation",
    "browse_hint",
    "build_command",
    "plan_command",
    "step_command",
]


@dataclass(frozen=True)
class Invocation:
    """Where a command runs: its environment, working directory and output streams."""

    environ: Mapping[str, str]
    cwd: Path
    out: TextIO
    err: TextIO


def _prepare(options: BuildOptions, io: Invocation) -> BuildPlan:
    plan = prepare(options, environ=io.environ, cwd=io.cwd)
    for line in plan.warnings:
        publish_warning(line, out=io.err, environ=io.environ)
    return plan


def plan_command(
    options: BuildOptions,
    *,
    render_only: bool,
    io: Invocation,
) -> int:
    """``orchestrator plan`` (what a build would do) or ``render`` (the job settings only)."""
    plan = _prepare(options, io)
    document = plan.settings if render_only else plan_document(plan)
    io.out.write(json.dumps(document, indent=2) + "\n")
    return EXIT_OK


def build_command(
    options: BuildOptions,
    *,
    json_output: bool,
    io: Invocation,
) -> int:
    """``orchestrator build``: progress on ``out`` (``err`` with ``--json``), then the report."""
    plan = _prepare(options, io)
    environ, out, err = io.environ, io.out, io.err
    if not plan.tasks:
        message = f"no test notebook is affected by changes since {options.changed_since}"
        skipped = {"status": "skipped", "reason": message}
        out.write((json.dumps(skipped) if json_output else message) + "\n")
        return EXIT_OK
    progress_out = err if json_output else out
    with tempfile.TemporaryDirectory(prefix="orchestrator-build-") as scratch:
        result = execute(
            plan,
            out=progress_out,
            environ=environ,
            keep=plan.config.keep,
            live=progress_out.isatty() and not environ.get("CI"),
            scratch=Path(scratch),
        )
    fallback = {"status": "cancelled", "exit_code": result.exit_code}
    _report(
        result,
        plan,
        json_output=json_output,
        environ=environ,
        out=out,
        err=err,
        fallback=fallback,
    )
    line = browse_hint(result, cwd=io.cwd)
    if line:
        progress_out.write(line + "\n")
    return result.exit_code


def browse_hint(result: BuildResult, *, cwd: Path) -> str | None:
    """How to open a run of the embedded local workspace after the build: ``orchestrator local
    serve`` on the state the build kept, and the run's page on serve's default port."""
    if result.local_state is None or not result.run_url:
        return None
    command = "orchestrator local serve"
    state = result.local_state.resolve()
    if state != (cwd / LOCAL_STATE_DIR).resolve():
        command += f" --state-dir {shlex.quote(str(state))}"
    page = urlsplit(result.run_url)._replace(netloc=f"127.0.0.1:{LOCAL_SERVE_PORT}").geturl()
    return f"Browse this run later: {command}   then open {page}"


def step_command(
    step: str,
    options: BuildOptions,
    *,
    run_id: int | None,
    json_output: bool,
    io: Invocation,
) -> int:
    """One of the build's steps, with the build's config and ``--build-id``/``--run-id``."""
    plan = _prepare(options, io)
    environ, out, err = io.environ, io.out, io.err
    with tempfile.TemporaryDirectory(prefix="orchestrator-step-") as scratch:
        result = run_step(
            step,
            plan,
            out=err if json_output else out,
            environ=environ,
            run_id=run_id,
            scratch=Path(scratch),
        )
    _report(
        result,
        plan,
        json_output=json_output,
        environ=environ,
        out=out,
        err=err,
        fallback=describe(result),
    )
    if result.summary is None and not json_output and result.run_id is not None and step == "run":
        out.write(f"{result.run_id}\n")
    return result.exit_code


def _report(
    result: BuildResult,
    plan: BuildPlan,
    *,
    json_output: bool,
    environ: Mapping[str, str],
    out: TextIO,
    err: TextIO,
    fallback: dict[str, Any],
) -> None:
    """The test results (the CI report, or with ``--json`` one document), or ``fallback`` as
    JSON when the command collected none."""
    registered = versions_document(result.registered)
    if result.summary is not None:
        if json_output:
            document = to_json(result.summary, context=plan.context, run_url=result.run_url)
            document["exit_code"] = result.exit_code
            if plan.register is not None:
                document["models"] = {"registered": registered}
            out.write(json.dumps(document, indent=2) + "\n")
        else:
            publish(result.summary, out=out, environ=environ, run_url=result.run_url)
    elif json_output:
        out.write(json.dumps(fallback) + "\n")
    # with --json the document holds them: only the CI's step outputs are written (Azure
    # DevOps' output variables as commands on stderr, which its agent reads too)
    publish_models(
        registered,
        out=None if json_output else out,
        commands=err if json_output else out,
        environ=environ,
    )
