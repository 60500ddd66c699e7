"""``python -m orchestrator.local.runtime.child``: run a child notebook (dbutils.notebook.run).

The in-kernel shims start this module from a notebook's kernel; it inherits the parent run's
``ORCH_*`` environment. It resolves ``--path`` through the workspace store's sqlite database,
runs it with :func:`~orchestrator.local.runtime.executor.execute_notebook` (parameters are
the ``--args`` only, as on Databricks; a fresh scratch directory under the parent's control
directory; the same workspace, DBFS and secrets), writes the outcome as JSON to
``--result-file`` and exits 0 on SUCCESS, else 1. SIGTERM or SIGINT cancel the run, which
kills the child's kernel tree before this process exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.local.runtime.executor import execute_notebook
from orchestrator.local.runtime.magics import resolve_run_path
from orchestrator.local.runtime.model import ExecutionRequest, NotebookResult
from orchestrator.local.runtime.resolver import NotebookNotFound, make_sqlite_resolver

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.local.runtime.child")
    parser.add_argument("--path", required=True, help="workspace path of the notebook")
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds, 0 = none")
    parser.add_argument("--args", default="{}", help="JSON object of widget values")
    parser.add_argument("--result-file", required=True, type=Path)
    return parser.parse_args(argv)


def _write_result(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=".result-", delete=False
    ) as handle:
        json.dump(payload, handle, ensure_ascii=False)
    Path(handle.name).replace(path)


def _failure(message: str) -> dict[str, Any]:
    return {"status": "FAILED", "exit_value": None, "error": message, "error_trace": None}


def _env_path(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        raise KeyError(name)
    return Path(value)


def _run(args: argparse.Namespace, cancel: threading.Event) -> dict[str, Any]:
    try:
        parameters = json.loads(args.args)
    except ValueError as exc:
        return _failure(f"--args is not JSON: {exc}")
    if not isinstance(parameters, dict):
        return _failure("--args must be a JSON object")
    try:
        state_db = _env_path("ORCH_STATE_DB")
        workspace_root = _env_path("ORCH_WORKSPACE_ROOT")
        dbfs_root = _env_path("ORCH_DBFS_ROOT")
        control_dir = _env_path("ORCH_CONTROL_DIR")
        secrets = json.loads(os.environ.get("ORCH_SECRETS") or "{}")
    except KeyError as exc:
        return _failure(f"environment variable {exc.args[0]} is not set")
    except ValueError as exc:
        return _failure(f"ORCH_SECRETS is not JSON: {exc}")
    path = args.path
    if not path.startswith("/"):
        path = resolve_run_path(os.environ.get("ORCH_NOTEBOOK_PATH", "/"), path)
    resolver = make_sqlite_resolver(state_db, workspace_root)
    try:
        source = resolver(path)
    except NotebookNotFound as exc:
        return _failure(f"Notebook not found: {path} ({exc})")
    scratch = control_dir / f"child-{uuid.uuid4().hex[:12]}"
    scratch.mkdir(parents=True)
    request = ExecutionRequest(
        notebook=source,
        parameters={str(key): str(value) for key, value in parameters.items()},
        workspace_root=workspace_root,
        dbfs_root=dbfs_root,
        scratch_dir=scratch,
        state_db=state_db,
        secrets=secrets if isinstance(secrets, dict) else {},
        timeout_seconds=args.timeout or None,
    )
    result: NotebookResult = execute_notebook(request, resolver=resolver, cancel=cancel)
    return {
        "status": result.status,
        "exit_value": result.exit_value,
        "error": result.error,
        "error_trace": result.error_trace,
        "failed_cell": result.failed_cell,
        "executed_notebook": str(result.executed_notebook),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the child notebook; 0 on SUCCESS, 1 otherwise."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parse_args(argv)
    cancel = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: canceling the child run", signum)
        cancel.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        payload = _run(args, cancel)
    except Exception as exc:
        logger.exception("child run failed")
        payload = _failure(f"the child run crashed: {type(exc).__name__}: {exc}")
    _write_result(args.result_file, payload)
    return 0 if payload["status"] == "SUCCESS" else 1


if __name__ == "__main__":
    sys.exit(main())
