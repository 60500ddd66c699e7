"""Child notebook runs (``dbutils.notebook.run``), served by the run that started them.

The in-kernel shims (Python and R) ask for a child run by writing
``$ORCH_CONTROL_DIR/<stem>.request.json`` (``{"path", "timeout", "args"}``) and wait for
``<stem>.result.json``; an interrupted wait writes ``<stem>.cancel.json``. The executor of the
parent run polls its control folder from its ``check`` (every ~0.1 s while a cell runs), claims
each request and runs the child in a thread of the same process, with the parent's workspace,
DBFS, secrets, environment and kernel source (so a child gets a warm kernel too). No extra
process chain: the child's kernel is the only new process.

On Databricks ``dbutils.notebook.run`` starts an ephemeral notebook job run (``WORKFLOW_RUN``)
with its own run id and page, and the parent learns only how it ended. So here: the request's
:class:`~.execution.ChildRunRecorder` (``ExecutionRequest.child_runs``, given by the jobs
engine) records the child as a run before its kernel starts, and the child runs in that run's
own folder. ``<stem>.started.json`` (``{"run_id", "run_page_url"}``) tells the shim the run
exists, so the calling cell shows its link while it runs; the result file holds only
``status``, ``exit_value``, ``run_id`` and ``run_page_url``: no cells, no error text, no
traceback of the child reach the parent. A request that starts no run (unreadable, or naming
a notebook that does not exist) is answered with ``status`` FAILED and an ``error``.

A child is stopped (its kernel tree killed) when its own timeout passes, when the parent run
ends for any reason, or when the waiting cell is interrupted.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.files import write_json_atomically
from orchestrator.local.runtime.cell_commands import resolve_run_path
from orchestrator.local.runtime.execution import ChildRefused
from orchestrator.local.runtime.resolver import NotebookNotFound

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from orchestrator.local.runtime.execution import (
        ExecutionRequest,
        NotebookResolver,
        NotebookResult,
        NotebookSource,
    )

__all__ = ["ChildRuns"]

logger = logging.getLogger(__name__)

REQUEST_SUFFIX = ".request.json"
_CLAIMED_SUFFIX = ".claimed.json"
STARTED_SUFFIX = ".started.json"
RESULT_SUFFIX = ".result.json"
CANCEL_SUFFIX = ".cancel.json"
_JOIN_SECONDS = 30.0


def _failure(message: str) -> dict[str, Any]:
    """The answer to a request that started no child run."""
    return {"status": "FAILED", "exit_value": None, "error": message}


@dataclass
class _Child:
    stem: str
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class ChildRuns:
    """The child runs of one notebook run: claims requests, runs them, stops them."""

    def __init__(
        self,
        parent: ExecutionRequest,
        control_dir: Path,
        resolver: NotebookResolver,
        run: Callable[[ExecutionRequest, threading.Event], NotebookResult],
    ) -> None:
        self._parent = parent
        self._control_dir = control_dir
        self._resolver = resolver
        self._run = run
        self._children: dict[str, _Child] = {}

    def poll(self) -> None:
        """Start the requested children, pass on the cancels of interrupted waits."""
        try:
            names = [entry.name for entry in self._control_dir.iterdir()]
        except OSError:
            return
        for name in names:
            if name.endswith(REQUEST_SUFFIX):
                self._claim(name[: -len(REQUEST_SUFFIX)])
            elif name.endswith(CANCEL_SUFFIX):
                child = self._children.get(name[: -len(CANCEL_SUFFIX)])
                if child is not None:
                    child.cancel.set()

    def _claim(self, stem: str) -> None:
        request_file = self._control_dir / f"{stem}{REQUEST_SUFFIX}"
        claimed = self._control_dir / f"{stem}{_CLAIMED_SUFFIX}"
        try:
            request_file.replace(claimed)
            payload: Any = json.loads(claimed.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self._write_result(stem, _failure(f"unreadable child run request: {exc}"))
            return
        finally:
            claimed.unlink(missing_ok=True)
        child = _Child(stem)
        child.thread = threading.Thread(
            target=self._serve, args=(child, payload), name=f"child-{stem}", daemon=True
        )
        self._children[stem] = child
        child.thread.start()

    def _serve(self, child: _Child, payload: Any) -> None:
        try:
            result = self._execute(child, payload)
        except Exception as exc:
            logger.exception("child run %s failed", child.stem)
            result = _failure(f"the child run crashed: {type(exc).__name__}: {exc}")
        self._write_result(child.stem, result)

    def _execute(self, child: _Child, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("path"), str):
            return _failure("a child run request needs a notebook path")
        arguments = payload.get("args") or {}
        if not isinstance(arguments, dict):
            return _failure("the arguments of a child run must be a JSON object")
        path = str(payload["path"])
        if not path.startswith("/"):
            path = resolve_run_path(self._parent.notebook.workspace_path, path)
        try:
            source = self._resolver(path)
        except NotebookNotFound as exc:
            return _failure(f"Notebook not found: {path} ({exc})")
        try:
            timeout = float(payload.get("timeout") or 0)
        except (TypeError, ValueError):
            return _failure(f"the timeout of a child run is not a number: {payload['timeout']!r}")
        parameters = {str(key): str(value) for key, value in arguments.items()}
        recorder = self._parent.child_runs
        if recorder is None:
            return self._run_unrecorded(child, source, parameters, timeout)
        try:
            recorded = recorder.start(
                notebook_path=path,
                parameters=parameters,
                parent_environment=self._parent.environment,
                cancel=child.cancel,
            )
        except ChildRefused as exc:
            return _failure(str(exc))
        link = {"run_id": recorded.run_id, "run_page_url": recorded.run_page_url}
        self._write(f"{child.stem}{STARTED_SUFFIX}", link)
        request = self._child_request(
            source,
            parameters,
            timeout,
            scratch=recorded.scratch_dir,
            environment={**self._parent.environment, **recorded.environment},
        )
        try:
            result = self._run(request, child.cancel)
        except Exception as exc:
            logger.exception("child run %s crashed", recorded.run_id)
            result = _crashed(request, exc)
        recorder.finish(recorded, result)
        return {"status": result.status, "exit_value": result.exit_value, **link}

    def _run_unrecorded(
        self, child: _Child, source: NotebookSource, parameters: dict[str, str], timeout: float
    ) -> dict[str, Any]:
        """A child with nobody to record it (the runtime's own tests): it runs in the
        parent's control folder and has no run id."""
        scratch = self._control_dir / f"child-{uuid.uuid4().hex[:12]}"
        scratch.mkdir(parents=True)
        request = self._child_request(
            source, parameters, timeout, scratch=scratch, environment=self._parent.environment
        )
        result = self._run(request, child.cancel)
        return {"status": result.status, "exit_value": result.exit_value}

    def _child_request(
        self,
        source: NotebookSource,
        parameters: dict[str, str],
        timeout: float,
        *,
        scratch: Path,
        environment: Mapping[str, str],
    ) -> ExecutionRequest:
        from orchestrator.local.runtime.execution import ExecutionRequest

        parent = self._parent
        return ExecutionRequest(
            notebook=source,
            parameters=parameters,  # only the given arguments, as on Databricks
            workspace_root=parent.workspace_root,
            dbfs_root=parent.dbfs_root,
            scratch_dir=scratch,
            state_db=parent.state_db,
            secrets=parent.secrets,
            timeout_seconds=timeout if timeout > 0 else None,
            environment=environment,
            child_runs=parent.child_runs,  # grandchildren are runs of their own too
        )

    def _write(self, name: str, payload: dict[str, Any]) -> None:
        try:
            write_json_atomically(self._control_dir / name, payload)
        except OSError:
            logger.exception("cannot write %s", name)

    def _write_result(self, stem: str, payload: dict[str, Any]) -> None:
        self._write(f"{stem}{RESULT_SUFFIX}", payload)

    def stop(self) -> None:
        """Stop every child still running and wait until their kernels are gone."""
        for child in self._children.values():
            child.cancel.set()
        for child in self._children.values():
            if child.thread is not None:
                child.thread.join(_JOIN_SECONDS)
                if child.thread.is_alive():
                    logger.warning("child run %s did not stop in time", child.stem)


def _crashed(request: ExecutionRequest, exc: Exception) -> NotebookResult:
    """How a child whose runtime crashed ended (the runtime never raises for a notebook)."""
    from orchestrator.local.runtime.execution import NotebookResult

    return NotebookResult(
        status="FAILED",
        exit_value=None,
        error=f"internal error of the local notebook runtime: {type(exc).__name__}: {exc}",
        error_trace=None,
        failed_cell=None,
        logs="",
        executed_notebook=request.scratch_dir / "executed_notebook.ipynb",
    )
