"""Command line: ``orchestrator <command>``; ``main(argv) -> int`` so it is testable in-process.

This module parses arguments, calls the library and maps :class:`OrchestratorError` to a
one-line message and an exit code. Heavy modules are imported inside the command functions so
``orchestrator --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from orchestrator import __version__
from orchestrator.errors import EXIT_OK, EXIT_USAGE, OrchestratorError
from orchestrator.masking import masked_output

__all__ = ["main"]

log = logging.getLogger("orchestrator")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Build, test and clean up Databricks notebooks from CI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="config file (default: ./orchestrator.yml)")
    common.add_argument("--target", help="config target (default: $ORCHESTRATOR_TARGET or local)")
    common.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field, e.g. --set timeouts.build=30m (repeatable)",
    )
    common.add_argument("--build-id", help="build id (default: from the CI, or generated)")
    common.add_argument("--repo-name", help="repo name (default: from the CI or git)")
    common.add_argument(
        "--changed-since",
        metavar="REF",
        help="run only the test notebooks affected by changes since REF (see README)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    build = commands.add_parser(
        "build", parents=[common], help="deploy, run, collect and publish one build"
    )
    build.add_argument(
        "--keep", action="store_true", help="keep the build's folders (for debugging)"
    )
    build.add_argument("--timeout", help="build timeout, e.g. 45m (overrides timeouts.build)")
    commands.add_parser(
        "plan",
        parents=[common],
        help="dry run: print the job, the files and their destinations, the run parameters",
    )
    commands.add_parser("render", parents=[common], help="print the rendered job settings (JSON)")
    step_help = {
        "deploy": "step: notebooks to the build folder, test data/scripts/models to storage",
        "run": "step: cluster, entry notebook, job, run-now; prints the run id",
        "wait": "step: wait for --run-id under the build timeout (cancels it on expiry)",
        "collect": "step: JUnit and notebooks of --run-id to test-results/ and artifacts/",
        "clean": "step: remove the build folder and storage prefix of --build-id",
    }
    for name, text in step_help.items():
        step = commands.add_parser(name, parents=[common], help=text)
        if name in ("wait", "collect"):
            step.add_argument("--run-id", type=int, required=True, help="the build's run")
        if name == "wait":
            step.add_argument("--timeout", help="how long to wait, e.g. 45m (timeouts.build)")

    _cleanup_parser(commands)

    local = commands.add_parser("local", help="the local Databricks-compatible workspace")
    local_commands = local.add_subparsers(dest="local_command", metavar="SUBCOMMAND")
    serve = local_commands.add_parser("serve", help="run the local workspace until interrupted")
    serve.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free)")
    serve.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".orchestrator/local-workspace"),
        help="where the workspace tree, jobs and runs are kept",
    )
    serve.add_argument(
        "--token-env",
        default="DATABRICKS_TOKEN",
        help="environment variable holding the token clients must send (random if unset)",
    )
    serve.add_argument("--max-workers", type=int, default=4, help="tasks running at once")
    serve.add_argument(
        "--cluster-start-delay", type=float, default=2.0, help="seconds a cluster takes to start"
    )
    serve.add_argument(
        "--faults", type=Path, help="JSON file of fault settings (latency, 429/503 rates...)"
    )
    return parser


def _serve(args: argparse.Namespace) -> int:
    import os

    from orchestrator.errors import UsageError
    from orchestrator.local import FaultSettings, start_local_workspace

    faults = FaultSettings()
    if args.faults is not None:
        try:
            faults = FaultSettings.from_dict(json.loads(args.faults.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"{args.faults}: invalid fault settings: {exc}") from None
    token = os.environ.get(args.token_env) or None
    try:
        workspace = start_local_workspace(
            args.state_dir,
            port=args.port,
            token=token,
            faults=faults,
            cluster_start_delay=args.cluster_start_delay,
            max_workers=args.max_workers,
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"Local workspace on {workspace.url} (state in {args.state_dir})", flush=True)
    print(f"export DATABRICKS_HOST={workspace.url}", flush=True)
    if token is None and sys.stdout.isatty():
        print(f"export DATABRICKS_TOKEN={workspace.token}", flush=True)
    elif token is None:
        print(f"Token: random (set ${args.token_env} to choose it)", flush=True)
    else:
        print(f"Token: taken from ${args.token_env}", flush=True)
    try:
        stop.wait()
    finally:
        print("Stopping: cancelling active runs", flush=True)
        workspace.stop()
    return EXIT_OK


def _overrides(items: Sequence[str]) -> dict[str, str]:
    """``--set FIELD=VALUE`` flags as config overrides."""
    from orchestrator.errors import UsageError

    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected FIELD=VALUE")
        overrides[key.strip()] = value
    return overrides


def _options(args: argparse.Namespace) -> object:
    from orchestrator.build.flow import BuildOptions

    overrides = _overrides(args.overrides)
    if getattr(args, "timeout", None):
        overrides["timeouts.build"] = args.timeout
    if getattr(args, "keep", False):
        overrides["keep"] = "true"
    return BuildOptions(
        config_path=args.config,
        target=args.target,
        overrides=overrides,
        build_id=args.build_id,
        repo_name=args.repo_name,
        changed_since=args.changed_since,
    )


def _warn(lines: Sequence[str]) -> None:
    """Warnings go to stderr (and the CI's annotations), never into --json output."""
    import os

    from orchestrator.results.report import publish_warning

    for line in lines:
        publish_warning(line, out=sys.stderr, environ=os.environ)


def _plan(args: argparse.Namespace, *, render_only: bool) -> int:
    import os

    from orchestrator.build.flow import BuildOptions, plan_document, prepare

    options = _options(args)
    assert isinstance(options, BuildOptions)
    plan = prepare(options, environ=os.environ, cwd=Path.cwd())
    _warn(plan.warnings)
    document = plan.settings if render_only else plan_document(plan)
    print(json.dumps(document, indent=2))
    return EXIT_OK


def _build(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from orchestrator.build.flow import BuildOptions, execute, prepare
    from orchestrator.results.report import publish, to_json

    options = _options(args)
    assert isinstance(options, BuildOptions)
    plan = prepare(options, environ=os.environ, cwd=Path.cwd())
    _warn(plan.warnings)
    if not plan.tasks:
        message = f"no test notebook is affected by changes since {args.changed_since}"
        print(json.dumps({"status": "skipped", "reason": message}) if args.json else message)
        return EXIT_OK
    progress_out = sys.stderr if args.json else sys.stdout
    with tempfile.TemporaryDirectory(prefix="orchestrator-build-") as scratch:
        result = execute(
            plan,
            out=progress_out,
            environ=os.environ,
            keep=plan.config.keep,
            live=progress_out.isatty() and not os.environ.get("CI"),
            scratch=Path(scratch),
        )
    if result.summary is not None:
        if args.json:
            document = to_json(result.summary, context=plan.context, run_url=result.run_url)
            document["exit_code"] = result.exit_code
            print(json.dumps(document, indent=2))
        else:
            publish(result.summary, out=sys.stdout, environ=os.environ, run_url=result.run_url)
    elif args.json:
        print(json.dumps({"status": "cancelled", "exit_code": result.exit_code}))
    return result.exit_code


def _step(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from orchestrator.build.flow import BuildOptions, prepare
    from orchestrator.build.steps import describe, run_step
    from orchestrator.results.report import publish, to_json

    options = _options(args)
    assert isinstance(options, BuildOptions)
    plan = prepare(options, environ=os.environ, cwd=Path.cwd())
    _warn(plan.warnings)
    with tempfile.TemporaryDirectory(prefix="orchestrator-step-") as scratch:
        result = run_step(
            args.command,
            plan,
            out=sys.stderr if args.json else sys.stdout,
            environ=os.environ,
            run_id=getattr(args, "run_id", None),
            scratch=Path(scratch),
        )
    if result.summary is not None:
        if args.json:
            print(json.dumps(to_json(result.summary, context=plan.context, run_url=result.run_url)))
        else:
            publish(result.summary, out=sys.stdout, environ=os.environ, run_url=result.run_url)
    elif args.json:
        print(json.dumps(describe(result)))
    elif result.run_id is not None and args.command == "run":
        print(result.run_id)
    return result.exit_code


def _cleanup_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cleanup = commands.add_parser(
        "cleanup",
        help="delete old build folders and storage prefixes, cancel orphaned runs",
        description="Delete build folders (<build_root>/<repo>/<build_id>) and their storage "
        "prefixes that no retention rule keeps, and cancel orphaned runs of the build-<repo> "
        "jobs. A build is deleted only when no rule keeps it; see README, Cleanup.",
    )
    cleanup.add_argument("--config", type=Path, help="config file (default: ./orchestrator.yml)")
    cleanup.add_argument("--target", help="config target (default: $ORCHESTRATOR_TARGET or local)")
    cleanup.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field, e.g. --set build_root=/Shared/ci-builds (repeatable)",
    )
    cleanup.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="NAME",
        help="only this repo (repeatable; default: every repo under the build root)",
    )
    cleanup.add_argument(
        "--older-than", metavar="AGE", help="keep builds younger than AGE, e.g. 14d, 36h, 2w"
    )
    cleanup.add_argument(
        "--keep-last", type=int, metavar="N", help="keep the N newest builds of each repo"
    )
    cleanup.add_argument(
        "--include-unmarked",
        action="store_true",
        help="also judge folders without a _build.json marker by their modification time",
    )
    orphans = cleanup.add_mutually_exclusive_group()
    orphans.add_argument(
        "--orphan-after",
        metavar="AGE",
        help="cancel build runs active longer than AGE (default: 6h, or twice "
        "timeouts.build + timeouts.cluster_start when that is longer)",
    )
    orphans.add_argument(
        "--no-orphan-sweep",
        action="store_true",
        help="cancel no runs (a live run still keeps its build)",
    )
    cleanup.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be deleted and cancelled; change nothing",
    )
    cleanup.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="N",
        help="workspace deletes per second (default: 2, the service's limit; 0 = no limit)",
    )
    cleanup.add_argument(
        "--concurrency", type=int, default=None, metavar="N", help="deletes in flight (default: 16)"
    )
    cleanup.add_argument("--json", action="store_true", help="machine-readable report on stdout")


def _cleanup(args: argparse.Namespace) -> int:
    from orchestrator.cleanup.execute import (
        DEFAULT_CONCURRENCY,
        DEFAULT_DELETE_RATE,
        CleanupOptions,
        default_orphan_after,
        load_cleanup_config,
        run_cleanup,
    )
    from orchestrator.cleanup.policy import Policy, is_build_name, parse_age
    from orchestrator.cleanup.report import report_json, report_lines
    from orchestrator.errors import UsageError

    for name in args.repo:
        if not is_build_name(name):
            raise UsageError(f"--repo {name!r}: not a repo name (letters, digits, '.', '_', '-')")
    rate = DEFAULT_DELETE_RATE if args.rate is None else args.rate
    concurrency = DEFAULT_CONCURRENCY if args.concurrency is None else args.concurrency
    if rate < 0 or concurrency < 1:
        raise UsageError("--rate must be 0 or more and --concurrency at least 1")
    older_than = parse_age(args.older_than, flag="--older-than") if args.older_than else None
    Policy(older_than=older_than, keep_last=args.keep_last)  # flag errors before the config's
    overrides = _overrides(args.overrides)
    config = load_cleanup_config(
        config_path=args.config,
        target=args.target,
        overrides=overrides,
        environ=os.environ,
        cwd=Path.cwd(),
    )
    if args.no_orphan_sweep:
        orphan_after = None
    elif args.orphan_after:
        orphan_after = parse_age(args.orphan_after, flag="--orphan-after")
    else:
        orphan_after = default_orphan_after(config)
    policy = Policy(
        older_than=older_than,
        keep_last=args.keep_last,
        include_unmarked=args.include_unmarked,
        orphan_after=orphan_after,
    )
    options = CleanupOptions(
        policy,
        repos=tuple(args.repo),
        dry_run=args.dry_run,
        rate=rate or None,
        concurrency=concurrency,
    )
    events = sys.stderr if args.json else sys.stdout
    report = run_cleanup(
        options,
        config=config,
        environ=os.environ,
        on_event=lambda line: print(line, file=events, flush=True),
    )
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print("\n".join(report_lines(report)))
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # the Azure SDK logs credential-chain and retry details as warnings; failures reach
        # the user as our own one-line errors
        logging.getLogger("azure").setLevel(logging.ERROR)
    # every resolved secret is masked in all output from here on (streams and logging) and
    # announced to the CI (##vso[task.setsecret] / ::add-mask::)
    with masked_output(environ=os.environ):
        return _command(parser, args)


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        if args.command == "build":
            return _build(args)
        if args.command in ("deploy", "run", "wait", "collect", "clean"):
            return _step(args)
        if args.command in ("plan", "render"):
            return _plan(args, render_only=args.command == "render")
        if args.command == "cleanup":
            return _cleanup(args)
        if args.command == "local" and args.local_command == "serve":
            return _serve(args)
        parser.print_help()
        return EXIT_USAGE
    except OrchestratorError as err:
        # one line per problem (a config file may have several, all reported at once)
        for line in str(err).splitlines() or [type(err).__name__]:
            if line.strip():
                print(f"orchestrator: error: {line.strip()}", file=sys.stderr)
        return err.exit_code
