"""Execute one notebook task run in a fresh Jupyter kernel: :func:`execute_notebook`.

This module owns the life of a run: starting the kernel (as :mod:`.launch` says), running
the cells one by one (magics included, ``%run`` recursively in the same kernel, SQL cells as
:mod:`.cell_commands` says: a SQL notebook in a Python kernel, an R notebook's ``%sql`` cells
in a Python kernel started beside the R one on the first of them), detecting
``dbutils.notebook.exit`` through ``$ORCH_CONTROL_DIR/exit.json``, mapping errors, timeouts
and cancels to a :class:`NotebookResult`, writing the executed ``.ipynb`` and always killing
the kernels' whole process trees.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.local.runtime import cell_commands as magics
from orchestrator.local.runtime.children import ChildRuns
from orchestrator.local.runtime.env_cache import configured_max_bytes
from orchestrator.local.runtime.execution import (
    ExecutionRequest,
    NotebookResolver,
    NotebookResult,
    NotebookSource,
    RunStatus,
)
from orchestrator.local.runtime.installs import InstallContext, uses_uv
from orchestrator.local.runtime.kernel_process import Kernel, KernelDiedError, KernelStartError
from orchestrator.local.runtime.launch import (
    KERNEL_START_TIMEOUT,
    adopt_code,
    bootstrap_steps,
    kernel_argv,
    kernel_base_env,
    kernel_python,
    kernel_run_env,
    tool_env,
)
from orchestrator.local.runtime.libraries import (
    LibraryError,
    install_libraries,
    library_path_mapper,
    plan_libraries,
)
from orchestrator.local.runtime.outputs import (
    CellOutputs,
    LogBuffer,
    error_line,
    one_line,
    strip_ansi,
)
from orchestrator.local.runtime.python_envs import (
    RuntimeEnvError,
    ensure_environment,
    environment_for,
)
from orchestrator.local.runtime.resolution_memo import configured_ttl
from orchestrator.local.runtime.resolver import NotebookNotFound
from orchestrator.local.state.notebook_format import (
    CELL_RUN_METADATA,
    CellState,
    Notebook,
    NotebookFormatError,
    ipynb_document,
    parse_source,
)

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from orchestrator.local.runtime.kernel_process import ExecuteReply
    from orchestrator.local.runtime.pool import KernelPool
    from orchestrator.local.state.notebook_format import Language

__all__ = [
    "KERNEL_START_TIMEOUT",
    "ExecutionRequest",
    "NotebookResolver",
    "NotebookResult",
    "NotebookSource",
    "execute_notebook",
]

logger = logging.getLogger(__name__)
#: Attempts at starting a kernel that exits at once.
KERNEL_START_ATTEMPTS = 3

EXECUTED_NOTEBOOK = "executed_notebook.ipynb"


class _Stopped(Exception):
    """The run was cancelled or timed out (raised from the polling ``check``)."""

    def __init__(self, status: RunStatus, message: str) -> None:
        super().__init__(message)
        self.status: RunStatus = status


class _CellFailed(Exception):
    """A cell failed: ``error`` is the one-line message, ``trace`` the context + traceback."""

    def __init__(self, error: str, trace: str) -> None:
        super().__init__(error)
        self.error = error
        self.trace = trace


class _Exited(Exception):
    """``dbutils.notebook.exit`` was called."""

    def __init__(self, value: str | None) -> None:
        super().__init__(value)
        self.value = value


@dataclass(frozen=True)
class _Outcome:
    """How the run ended, before logs and the executed notebook are added."""

    status: RunStatus
    error: str | None = None
    trace: str | None = None
    failed_cell: int | None = None
    exit_value: str | None = None


@dataclass(frozen=True)
class _Frame:
    """Where a cell is: its notebook and the ``%run`` chain that included it."""

    workspace_path: str
    includes: tuple[tuple[str, int], ...]  # (including notebook path, its cell index)

    def where(self, index: int) -> str:
        text = f"cell {index} of {self.workspace_path}"
        for path, cell in reversed(self.includes):
            text += f" (via %run in cell {cell} of {path})"
        return text

    def context(self, index: int) -> str:
        """:meth:`where`, capitalised: the first line of an error trace."""
        return "C" + self.where(index)[1:]


class _Run:
    """The state of one :func:`execute_notebook` call."""

    def __init__(
        self,
        request: ExecutionRequest,
        resolver: NotebookResolver,
        cancel: threading.Event,
        clock: Callable[[], float],
        kernels: KernelPool | None,
    ) -> None:
        self.request = request
        self.kernels = kernels
        self.resolver = resolver
        self.cancel = cancel
        self.clock = clock
        timeout = request.timeout_seconds
        self.deadline = clock() + timeout if timeout else None
        self.control_dir = request.scratch_dir / "control"
        self.pip_target = request.scratch_dir / "site-packages"
        self.log = LogBuffer()
        #: whether the run's log has the note that its runtime takes another's libraries
        self.noted_runtime = False
        self.kernel: Kernel | None = None
        #: an R notebook's kernel for its SQL cells (Python, started on the first one)
        self.sql_kernel: Kernel | None = None
        self.notebook = Notebook(request.notebook.language, ())
        self.cells: list[CellOutputs | None] = []
        #: per top-level cell that started: how it ended and when (wall clock, ms), kept in
        #: the executed notebook's cell metadata (``CELL_RUN_METADATA``) for runs/export
        self.timings: list[dict[str, Any] | None] = []
        self.current: CellOutputs | None = None
        self.top_cell: int | None = None
        self.shell_scripts = 0
        self.children = ChildRuns(request, self.control_dir, resolver, self.run_child)

    def run_child(self, request: ExecutionRequest, cancel: threading.Event) -> NotebookResult:
        """Run a child notebook (``dbutils.notebook.run``) the way this run runs."""
        return execute_notebook(
            request, resolver=self.resolver, cancel=cancel, clock=self.clock, kernels=self.kernels
        )

    def check(self) -> None:
        self.children.poll()
        if self.cancel.is_set():
            raise _Stopped("CANCELED", "the run was canceled")
        if self.deadline is not None and self.clock() >= self.deadline:
            timeout = self.request.timeout_seconds
            raise _Stopped("TIMEDOUT", f"the run timed out after {timeout:g} seconds")

    def result(self, outcome: _Outcome) -> NotebookResult:
        if outcome.trace:
            self.log.write(f"\n{outcome.trace}\n")
        return NotebookResult(
            status=outcome.status,
            exit_value=outcome.exit_value,
            error=outcome.error,
            error_trace=outcome.trace,
            failed_cell=outcome.failed_cell,
            logs=self.log.text(),
            executed_notebook=self.write_executed(),
        )

    def write_executed(self) -> Path:
        path = self.request.scratch_dir / EXECUTED_NOTEBOOK
        outputs = [cell.outputs if cell else None for cell in self.cells]
        counts = [cell.execution_count if cell else None for cell in self.cells]
        name = posixpath.basename(self.request.notebook.workspace_path) or "notebook"
        document = ipynb_document(
            self.notebook,
            name=name,
            outputs=outputs,
            execution_counts=counts,
            cell_metadata=[
                {CELL_RUN_METADATA: timing} if timing else None for timing in self.timings
            ],
        )
        text = json.dumps(document, indent=1, ensure_ascii=False)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates in some output: escape everything
            data = json.dumps(document, indent=1).encode("ascii")
        try:
            path.write_bytes(data)
        except OSError:
            logger.exception("cannot write the executed notebook %s", path)
        return path

    def execute(self) -> NotebookResult:
        try:
            outcome = self.outcome()
        finally:
            self.children.stop()
            for kernel in (self.kernel, self.sql_kernel):
                if kernel is not None:
                    kernel.kill()
        return self.result(outcome)

    def outcome(self) -> _Outcome:
        source = self.request.notebook
        try:
            self.request.scratch_dir.mkdir(parents=True, exist_ok=True)
            self.control_dir.mkdir(exist_ok=True)
            self.pip_target.mkdir(exist_ok=True)
            self.notebook = self.load(source.file, source.language)
            self.cells = [None] * len(self.notebook.cells)
            self.timings = [None] * len(self.notebook.cells)
            if source.language == "SCALA":
                return _Outcome(
                    "FAILED",
                    error="Scala notebooks are not supported by the local workspace; "
                    "only Python, R and SQL notebooks can run locally",
                )
            self.install_libraries()
            self.start_kernel(
                magics.kernel_language(source.language),
                spark=_uses_spark(self.notebook),
                role="kernel",
            )
            self.run_notebook(self.notebook, _Frame(source.workspace_path, ()))
        except _Exited as exited:
            return _Outcome("SUCCESS", exit_value=exited.value)
        except _Stopped as stopped:
            return _Outcome(stopped.status, error=str(stopped), failed_cell=self.top_cell)
        except _CellFailed as failed:
            return _Outcome("FAILED", failed.error, failed.trace, self.top_cell)
        except KernelStartError as exc:
            return _Outcome("FAILED", one_line(f"cannot start the kernel: {exc}"), str(exc))
        except LibraryError as exc:
            return _Outcome("FAILED", one_line(str(exc)))
        except KernelDiedError as exc:
            where = f" while running cell {self.top_cell}" if self.top_cell else ""
            error = f"the {source.language.title()} kernel died unexpectedly{where}"
            return _Outcome("FAILED", error, str(exc), self.top_cell)
        except (OSError, NotebookFormatError) as exc:
            return _Outcome("FAILED", one_line(f"cannot read the notebook: {exc}"))
        except Exception as exc:
            logger.exception("notebook runtime failure in %s", source.workspace_path)
            error = one_line(f"internal error of the local notebook runtime: {exc!r}")
            return _Outcome("FAILED", error, failed_cell=self.top_cell)
        return _Outcome("SUCCESS")

    def load(self, file: Path, language: Language) -> Notebook:
        return parse_source(file.read_text(encoding="utf-8", errors="replace"), language)

    def install_libraries(self) -> None:
        """The task's libraries and its environment's dependencies, for this run only (see
        :mod:`.libraries`), installed as ``%pip`` installs (:mod:`.installs`)."""
        if not self.request.libraries and not self.request.dependencies:
            return
        local = library_path_mapper(
            dbfs_root=self.request.dbfs_root, workspace_root=self.request.workspace_root
        )
        plan = plan_libraries(
            self.request.libraries, local_path=local, dependencies=self.request.dependencies
        )
        self.log.write(f"Installing the task's libraries: {', '.join(plan.described)}\n")
        notebook_dir = self.request.notebook.file.parent
        context = InstallContext(
            target=self.pip_target,
            python=str(self.runtime_python()),
            state_dir=self.request.state_db.parent,
            cwd=notebook_dir if notebook_dir.is_dir() else self.request.scratch_dir,
            work_dir=self.control_dir / "pip",
            env=tool_env(),
            max_bytes=configured_max_bytes(os.environ),
            use_uv=uses_uv(os.environ),
            resolution_ttl=configured_ttl(os.environ),
        )
        install_libraries(plan, context=context, check=self.check, say=self.log.write)

    def start_kernel(
        self, language: Language, *, spark: bool, role: Literal["kernel", "sql_kernel"]
    ) -> Kernel:
        """A kernel of ``language`` for this run (pooled, or started), with the run's
        environment and the shims loaded; kept as ``self.<role>`` from the moment it exists,
        so the run kills it whatever happens next."""
        # first: a runtime whose environment is not made yet is made here, saying so in the log
        python = self.runtime_python() if language == "PYTHON" else None
        run_env = kernel_run_env(
            self.request, control_dir=self.control_dir, pip_target=self.pip_target
        )
        notebook_dir = self.request.notebook.file.parent
        cwd = notebook_dir if notebook_dir.is_dir() else self.request.scratch_dir
        # the pool's kernels run on the default runtime's interpreter; another's starts its own
        pool = self.kernels if python is None or python == kernel_python() else None
        pooled = None
        kernel: Kernel | None = None
        if pool is not None:
            pooled = pool.take(language, spark=spark, check=self.check)
        if pooled is not None:
            kernel = pooled.kernel
            setattr(self, role, kernel)
            self.silent(kernel, language, "run's environment", adopt_code(language, run_env, cwd))
        else:
            kernel_dir = self.request.scratch_dir / role.replace("_", "-")
            env = kernel_base_env(self.request.state_db.parent, kernel_dir) | run_env
            for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
                try:
                    kernel = Kernel.start(
                        argv=kernel_argv(language, python=python),
                        cwd=cwd,
                        env=env,
                        work_dir=self.request.scratch_dir if role == "kernel" else kernel_dir,
                        check=self.check,
                        start_timeout=KERNEL_START_TIMEOUT,
                        state_dir=self.request.state_db.parent,
                        owned_dir=kernel_dir,
                        spawn=None if pool is None else pool.spawner(language, spark=spark),
                    )
                    break
                except KernelStartError as exc:
                    # A kernel that exits at once may have hit a passing resource shortage.
                    if attempt == KERNEL_START_ATTEMPTS or "did not answer" in str(exc):
                        raise
                    logger.warning("kernel start failed (%s); retrying", exc)
        assert kernel is not None
        setattr(self, role, kernel)
        for what, code in bootstrap_steps(language):
            self.silent(kernel, language, what, code)
        return kernel

    def runtime_python(self) -> Path:
        """The interpreter of the run's cluster's runtime profile (``ORCH_SPARK_VERSION``, the
        cluster's ``spark_version``); a runtime without a library set of its own takes the
        nearest one's, and the run's log says so."""
        spark_version = self.request.environment.get("ORCH_SPARK_VERSION")
        environment, note = environment_for(spark_version)
        if note is not None and not self.noted_runtime:
            self.noted_runtime = True
            self.log.write(note + "\n")
            _note_once(note)
        if not environment.ready:
            # a runtime other than the default is set up on its first run (a minute at most
            # from uv's cache): the run's output says why it waits
            # a failure is kernel_python's to raise again, as a kernel start error
            with contextlib.suppress(RuntimeEnvError):
                ensure_environment(environment, progress=lambda line: self.log.write(line + "\n"))
        return kernel_python(spark_version)

    def silent(self, kernel: Kernel, language: Language, what: str, code: str) -> None:
        """Run runtime code before the first cell; a failure fails the run naming ``what``."""
        reply = kernel.execute(code, on_message=lambda _msg: None, check=self.check, silent=True)
        if reply.status != "ok":
            trace = "\n".join(strip_ansi(line) for line in reply.traceback)
            raise _CellFailed(
                f"cannot load the {what}: {error_line(reply.ename, reply.evalue)}", trace
            )

    def run_notebook(self, notebook: Notebook, frame: _Frame) -> None:
        for index, cell in enumerate(notebook.cells, start=1):
            action = magics.plan_cell(cell, notebook.language)
            if frame.includes:
                self.run_cell(action, index, frame, notebook.language)
                continue
            self.top_cell = index
            self.current = CellOutputs(log=self.log) if cell.kind == "code" else None
            self.cells[index - 1] = self.current
            started = _now_ms()
            state: CellState = "error"
            try:
                self.run_cell(action, index, frame, notebook.language)
                state = "finished"
            except _Exited:
                state = "finished"
                raise
            except _Stopped:
                state = "stopped"
                raise
            finally:
                self.timings[index - 1] = {
                    "state": state,
                    "start_ms": started,
                    "finish_ms": _now_ms(),
                }

    def fail(self, frame: _Frame, index: int, message: str) -> _CellFailed:
        where = frame.where(index) if frame.includes else f"cell {index}"
        error = f"{where}: {message}"
        if self.current is not None:
            self.current.add_error("NotebookRuntimeError", error, [error])
        return _CellFailed(error, f"{frame.context(index)}:\n{message}")

    def run_cell(
        self, action: magics.CellAction, index: int, frame: _Frame, language: Language
    ) -> None:
        if isinstance(action, magics.Skip):
            return
        if isinstance(action, magics.Unsupported):
            raise self.fail(frame, index, action.message)
        if isinstance(action, magics.RunNotebook):
            self.run_included(action.path, index, frame, language)
            return
        if isinstance(action, magics.RunSql):
            self.run_sql(action.sql, index, frame, language)
            return
        kernel_language = magics.kernel_language(language)
        if isinstance(action, magics.RunCode):
            code = action.code
        else:
            self.shell_scripts += 1
            script_file = self.control_dir / f"sh-{self.shell_scripts}.sh"
            code = magics.shell_code(
                action.script, language=kernel_language, script_file=script_file
            )
        self.run_code(code, index, frame)

    def run_sql(self, sql: str, index: int, frame: _Frame, language: Language) -> None:
        """A SQL cell: in the notebook's kernel, or for R in the Python kernel beside it,
        after the R kernel wrote the widget values the cell's markers read."""
        if language != "R":
            self.run_code(magics.sql_code(sql, cell=frame.where(index)), index, frame)
            return
        assert self.kernel is not None
        widgets_file = self.control_dir / "sql-widgets.json"
        reply = self.kernel.execute(
            magics.widgets_code(widgets_file),
            on_message=lambda _msg: None,
            check=self.check,
            silent=True,
        )
        if reply.status != "ok":
            raise self.kernel_error(reply, index, frame)
        if self.sql_kernel is None:
            self.start_kernel("PYTHON", spark=True, role="sql_kernel")
        code = magics.sql_code(sql, cell=frame.where(index), widgets_file=widgets_file)
        self.run_code(code, index, frame, kernel=self.sql_kernel)

    def run_code(
        self, code: str, index: int, frame: _Frame, *, kernel: Kernel | None = None
    ) -> None:
        kernel = kernel or self.kernel
        assert kernel is not None
        collector = self.current or CellOutputs(log=self.log)
        reply = kernel.execute(code, on_message=collector.handle, check=self.check)
        exit_file = self.control_dir / "exit.json"
        if exit_file.exists():
            if reply.status != "ok":
                collector.drop_last_error()
            raise _Exited(self.read_exit(exit_file, collector))
        if reply.status != "ok":
            raise self.kernel_error(reply, index, frame)

    def kernel_error(self, reply: ExecuteReply, index: int, frame: _Frame) -> _CellFailed:
        if reply.status == "error":
            error = error_line(reply.ename, reply.evalue)
        else:
            error = f"execution {reply.status}"
        if frame.includes:
            error = f"{error} [{frame.where(index)}]"
        trace = "\n".join(strip_ansi(line) for line in reply.traceback)
        return _CellFailed(error, f"{frame.context(index)}:\n{trace}".rstrip())

    def read_exit(self, exit_file: Path, collector: CellOutputs) -> str | None:
        try:
            data: Any = json.loads(exit_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("unreadable %s: %s", exit_file, exc)
            return None
        value = data.get("value") if isinstance(data, dict) else None
        value = None if value is None else str(value)
        collector.add_stream("stdout", f"Notebook exited: {value if value is not None else ''}\n")
        return value

    def run_included(self, target: str, index: int, frame: _Frame, language: Language) -> None:
        path = magics.resolve_run_path(frame.workspace_path, target)
        chain = [frame.workspace_path, *(included for included, _ in frame.includes)]
        if path in chain:
            raise self.fail(frame, index, f"%run {target}: circular %run of {path}")
        try:
            source = self.resolver(path)
        except NotebookNotFound:
            raise self.fail(frame, index, f"%run {target}: notebook not found: {path}") from None
        if source.language != language:
            raise self.fail(
                frame,
                index,
                f"%run {target}: {path} is a {source.language} notebook, "
                f"not {language} like the notebook that runs it",
            )
        try:
            included = self.load(source.file, source.language)
        except OSError as exc:
            raise self.fail(frame, index, f"%run {target}: cannot read {path}: {exc}") from None
        inner = _Frame(path, (*frame.includes, (frame.workspace_path, index)))
        self.run_notebook(included, inner)


_noted: set[str] = set()


def _note_once(note: str) -> None:
    """The workspace's log says each runtime substitution once (each run's log says it too)."""
    if note not in _noted:
        _noted.add(note)
        logger.warning("%s", note)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _uses_spark(notebook: Notebook) -> bool:
    """Whether a cell names ``spark`` (``pyspark`` too) or is SQL: such a notebook gets a
    kernel with Spark's client imported ahead (pooled, or forked by the pool's Spark zygote)."""
    if notebook.language == "SQL":
        return True
    return any(
        "spark" in cell.source or cell.source.lstrip().lower().startswith("%sql")
        for cell in notebook.cells
    )


def execute_notebook(
    request: ExecutionRequest,
    *,
    resolver: NotebookResolver,
    cancel: threading.Event,
    clock: Callable[[], float] = time.monotonic,
    kernels: KernelPool | None = None,
) -> NotebookResult:
    """Run ``request.notebook`` in a fresh kernel and report how it ended.

    The kernel comes from ``kernels`` when it has one ready (never used before), else it is
    started here; ``dbutils.notebook.run`` children run in threads of this call, the same way.

    Never raises for anything the notebook does; the kernel and all its processes are gone
    when this returns. ``cancel`` ends the call within ~0.1 s (status ``CANCELED``);
    ``request.timeout_seconds`` is measured with ``clock`` (status ``TIMEDOUT``). The kernel
    start itself may take up to :data:`KERNEL_START_TIMEOUT` seconds.
    """
    started = time.monotonic()
    run = _Run(request, resolver, cancel, clock, kernels)
    with kernels.busy() if kernels is not None else nullcontext():
        result = run.execute()
    logger.info(
        "notebook %s: %s in %.1f s%s",
        request.notebook.workspace_path,
        result.status,
        time.monotonic() - started,
        f" ({result.error})" if result.error else "",
    )
    return result
