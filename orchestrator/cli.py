"""Command line: ``orchestrator <command>``; ``main(argv) -> int`` so it is testable in-process.

This module parses arguments, calls the library and maps :class:`OrchestratorError` to a
one-line message and an exit code. Heavy modules are imported inside the command functions so
``orchestrator --help`` stays fast.
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from orchestrator import __version__
from orchestrator.errors import EXIT_USAGE, OrchestratorError
from orchestrator.layout import LOCAL_SERVE_PORT, LOCAL_STATE_DIR
from orchestrator.masking import masked_output
from orchestrator.signals import BuildCancelled

if TYPE_CHECKING:
    from orchestrator.build.plan import BuildOptions

__all__ = ["main", "run"]

log = logging.getLogger("orchestrator")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Build, test and clean up Databricks notebooks from CI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path, help="config file (default: ./orchestrator.yml)")
    config.add_argument("--target", help="config target (default: $ORCHESTRATOR_TARGET or local)")
    config.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field, e.g. --set timeouts.build=30m (repeatable)",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[config])
    common.add_argument("--build-id", help="build id (default: from the CI, or generated)")
    common.add_argument("--repo-name", help="repo name (default: from the CI or git)")
    common.add_argument(
        "--changed-since",
        metavar="REF",
        help="run only the test notebooks affected by changes since REF (see README)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument(
        "--deploy-mode",
        choices=("workspace", "git-folder", "git"),
        help="how the notebooks reach the workspace (overrides deploy.mode; README: Deploy modes)",
    )

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

    _cleanup_parser(commands, config)
    _init_parser(commands)

    local = commands.add_parser("local", help="the local Databricks-compatible workspace")
    local_commands = local.add_subparsers(dest="local_command", metavar="SUBCOMMAND")
    serve = local_commands.add_parser("serve", help="run the local workspace until interrupted")
    serve.add_argument(
        "--port", type=int, default=LOCAL_SERVE_PORT, help="port on 127.0.0.1 (0 = any free)"
    )
    serve.add_argument(
        "--state-dir",
        type=Path,
        default=Path(LOCAL_STATE_DIR),
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
    setup = local_commands.add_parser(
        "setup",
        help="make the notebook runtime's Python environments (one per runtime profile)",
        description="Makes the Python environment of the default runtime profile (or of the "
        "ones named) from its lock, once: kernels run notebooks in them. Another profile's is "
        "made on the first run that needs it, which says so. Fast when they are there already.",
    )
    setup.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="VERSION",
        help="a runtime version (16.4) or spark_version (16.4.x-scala2.12) whose environment to "
        "make; repeatable. Default: the default runtime's",
    )
    setup.add_argument(
        "--all", action="store_true", help="make every runtime profile's environment"
    )
    prune = local_commands.add_parser(
        "prune", help="delete old runs' documents and outputs, and empty the install caches"
    )
    prune.add_argument(
        "--state-dir", type=Path, default=Path(LOCAL_STATE_DIR), help="as for local serve"
    )
    prune.add_argument("--keep-runs", type=int, help="ended runs kept, newest first (1000)")
    prune.add_argument("--max-age-days", type=float, help="days an ended run is kept (60)")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from orchestrator.services import serve_local

    return serve_local(
        args.state_dir,
        port=args.port,
        token=os.environ.get(args.token_env) or None,
        token_env=args.token_env,
        faults_file=args.faults,
        cluster_start_delay=args.cluster_start_delay,
        max_workers=args.max_workers,
        out=sys.stdout,
    )


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


def _options(args: argparse.Namespace) -> BuildOptions:
    from orchestrator.build.plan import BuildOptions

    overrides = _overrides(args.overrides)
    if getattr(args, "timeout", None):
        overrides["timeouts.build"] = args.timeout
    if getattr(args, "keep", False):
        overrides["keep"] = "true"
    if getattr(args, "deploy_mode", None):
        overrides["deploy.mode"] = args.deploy_mode
    return BuildOptions(
        config_path=args.config,
        target=args.target,
        overrides=overrides,
        build_id=args.build_id,
        repo_name=args.repo_name,
        changed_since=args.changed_since,
    )


def _build(args: argparse.Namespace) -> int:
    from orchestrator.build.commands import (
        Invocation,
        build_command,
        plan_command,
        step_command,
    )

    io = Invocation(environ=os.environ, cwd=Path.cwd(), out=sys.stdout, err=sys.stderr)
    if args.command in ("plan", "render"):
        return plan_command(_options(args), render_only=args.command == "render", io=io)
    if args.command == "build":
        return build_command(_options(args), json_output=args.json, io=io)
    run_id = getattr(args, "run_id", None)
    return step_command(args.command, _options(args), run_id=run_id, json_output=args.json, io=io)


def _cleanup_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    config: argparse.ArgumentParser,
) -> None:
    cleanup = commands.add_parser(
        "cleanup",
        parents=[config],
        help="delete old build folders and storage prefixes, cancel orphaned runs",
        description="Delete build folders (<build_root>/<repo>/<build_id>) and their storage "
        "prefixes that no retention rule keeps, and cancel orphaned runs of the build-<repo> "
        "jobs. A build is deleted only when no rule keeps it; see README, Cleanup.",
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


def _init_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = commands.add_parser(
        "init",
        help="scaffold orchestrator.yml and job-template.json from what this repo holds",
        description="Find the repo's notebooks, test runner notebooks, test, data and model "
        "folders; write orchestrator.yml (a local target, commented dev/prod examples) and "
        "job-template.json (one task per test runner notebook). Never overwrites without "
        "--force.",
    )
    init.add_argument("--all-notebooks", action="store_true", help="one task per notebook")
    init.add_argument(
        "--pipelines", choices=("azure", "github"), help="also write the CI pipelines"
    )
    init.add_argument("--force", action="store_true", help="overwrite existing files")
    init.add_argument("--root", type=Path, default=Path(), help="the repo (default: .)")


def _init(args: argparse.Namespace) -> int:
    from orchestrator.scaffold import InitOptions, init_command

    options = InitOptions(args.root, args.all_notebooks, args.pipelines, args.force)
    return init_command(options, out=sys.stdout)


def _cleanup(args: argparse.Namespace) -> int:
    from orchestrator.cleanup.command import CleanupRequest, run_cleanup_command
    from orchestrator.cleanup.report import report_json, report_lines

    request = CleanupRequest(
        config_path=args.config,
        target=args.target,
        overrides=_overrides(args.overrides),
        repos=tuple(args.repo),
        older_than=args.older_than,
        keep_last=args.keep_last,
        include_unmarked=args.include_unmarked,
        orphan_after=args.orphan_after,
        orphan_sweep=not args.no_orphan_sweep,
        dry_run=args.dry_run,
        rate=args.rate,
        concurrency=args.concurrency,
    )
    events = sys.stderr if args.json else sys.stdout
    report = run_cleanup_command(
        request,
        environ=os.environ,
        cwd=Path.cwd(),
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
    # announced to the CI (##vso[task.setsecret] / ::add-mask::), on stderr when stdout is a
    # JSON document (--json, plan, render) so that it stays one
    document = getattr(args, "json", False) or args.command in ("plan", "render")
    with masked_output(environ=os.environ, announce_on_stderr=document):
        return _command(parser, args)


def run() -> NoReturn:
    """The console script (and ``python -m orchestrator``): :func:`main`, then a quick exit.

    The interpreter's own teardown frees every object of every imported module one by one:
    0.3-0.5 s after a build has loaded nbconvert, jupyter_client and the SDK, longer than the
    build's collect step. Nothing of the orchestrator needs it: files and connections are
    closed by their ``with`` blocks and the embedded workspace is stopped when ``main``
    returns. So, as Python's own exit would, other non-daemon threads are joined, the
    ``atexit`` handlers run (logging's flush among them) and the streams are flushed; then
    the process ends with :func:`os._exit`, skipping the teardown.

    Reports print unicode as unicode; a console whose encoding cannot show a character gets
    ``?`` instead of an error (and never a ``\\u`` escape).
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    try:
        code = main()
    except SystemExit as exc:  # argparse's --help, --version and usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            sys.stderr.write(f"{exc.code}\n")
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # what the interpreter runs first at its exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            code = code or 1
    os._exit(code)


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        if args.command in ("build", "plan", "render", "deploy", "run", "wait", "collect", "clean"):
            return _build(args)
        if args.command == "init":
            return _init(args)
        if args.command == "cleanup":
            return _cleanup(args)
        if args.command == "local" and args.local_command == "serve":
            return _serve(args)
        if args.command == "local" and args.local_command == "setup":
            from orchestrator.services import setup_local

            return setup_local(out=sys.stdout, profiles=args.profile, every=args.all)
        if args.command == "local" and args.local_command == "prune":
            from orchestrator.services import prune_local

            return prune_local(
                args.state_dir,
                keep_runs=args.keep_runs,
                max_age_days=args.max_age_days,
                out=sys.stdout,
            )
        parser.print_help()
        return EXIT_USAGE
    except OrchestratorError as err:
        # one line per problem (a config file may have several, all reported at once)
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        if err.run_id is not None:
            lines.append(f"run {err.run_id}: {err.run_url or '(no URL)'}")
        _report_error(args, lines or [type(err).__name__], err.exit_code, run=err)
        return err.exit_code
    except BuildCancelled as cancelled:  # a signal outside a build's own handling
        print(f"orchestrator: cancelled by {cancelled}", file=sys.stderr)
        return cancelled.exit_code


def _report_error(
    args: argparse.Namespace,
    lines: list[str],
    exit_code: int,
    *,
    run: OrchestratorError | None = None,
) -> None:
    """The one place a failed command is told: ``orchestrator: error:`` lines on stderr; on
    Azure DevOps and GitHub also an error annotation per line and the failed task or step
    summary; with ``--json`` a JSON document with the error on stdout. Masked throughout."""
    from orchestrator.masking import masker
    from orchestrator.results.publish import detect_format, publish_errors

    lines = [masker().mask(line) for line in lines]
    for line in lines:
        print(f"orchestrator: error: {line}", file=sys.stderr)
    if detect_format(os.environ) != "plain":
        sys.stdout.flush()
        publish_errors(lines, out=sys.stderr, environ=os.environ, title=_title(args))
    if getattr(args, "json", False):
        document: dict[str, object] = {
            "status": "error",
            "exit_code": exit_code,
            "error": "\n".join(lines),
        }
        if run is not None and run.run_id is not None:
            document.update(run_id=run.run_id, run_url=run.run_url)
        print(json.dumps(document, indent=2))


def _title(args: argparse.Namespace) -> str:
    command = " ".join(c for c in (args.command, getattr(args, "local_command", None)) if c)
    return f"orchestrator {command}" if command else "orchestrator"
