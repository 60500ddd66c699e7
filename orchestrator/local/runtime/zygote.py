"""Python kernels forked from a warm process: :class:`Zygote`, the client of ``zygote_main.py``.

Starting ``python -m ipykernel_launcher`` costs about 0.7 CPU-s before the kernel answers,
most of it the interpreter start and the imports of IPython, ipykernel, zmq and tornado. On
a 2-core machine a build starts several kernels while its runs execute, so that CPU is taken
from the runs. A zygote (the name Android and Chromium give the pattern) is a process that
has made those imports once and forks a kernel per request: 0.2 CPU-s and about half the
wall time to a ready kernel, measured on this project's 2-core CI machine.

The forked kernel is what a fresh one would be (the zygote script's docstring lists what it
resets; the kernel pool's tests compare a pooled kernel's cwd, ``sys.path``, environment,
home and temp dir with a fresh one's). Four differences, all invisible to notebooks in
practice: the kernels of one zygote share its string hash seed (``PYTHONHASHSEED`` is
decided at interpreter start), debugpy (imported by the zygote, as by a kernel's init)
read its ``PYDEVD_*`` settings from the zygote's environment, the zygote's objects are
frozen (``gc.freeze``: the collector skips them, ``gc.get_objects()`` does not list them),
and ``/proc/<pid>/environ`` shows the zygote's initial environment (``os.environ``,
subprocesses and the owner mark, which the zygote carries too, are right).

Lifetime: the zygote gets ``PR_SET_PDEATHSIG`` from the thread that starts it and arms it in
every kernel it forks, so the chain ends with that thread; it reaps its kernels and reports
their exit codes, which :class:`ForkedProcess` gives as :class:`subprocess.Popen` would.

A :class:`ZygoteBranch` (:meth:`Zygote.branch`) is a zygote forked from one, that imports
more (Spark's client): it skips the interpreter's start and ipykernel's imports, talks
through its zygote's pipes and dies with it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from orchestrator.local.runtime.kernel_process import KernelStartError
from orchestrator.local.runtime.launch import KERNEL_DIR, kernel_python
from orchestrator.local.runtime.lifetime import die_with_parent, forget_process, record_process

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["ForkedProcess", "Zygote", "ZygoteBranch", "ZygoteError"]

logger = logging.getLogger(__name__)

_SCRIPT = KERNEL_DIR / "zygote_main.py"
#: seconds for the zygote's imports (about a second on a 2-core machine; more under load)
START_TIMEOUT = 60.0
#: seconds for a fork's reply (a fork takes milliseconds)
SPAWN_TIMEOUT = 10.0
#: how often a wait for the zygote's start calls its ``check``
_CHECK_SECONDS = 0.1


class ZygoteError(RuntimeError):
    """The zygote could not be started, or it is gone."""


class _Server:
    """What the client knows of one fork server, the zygote or a branch of it: the replies to
    its requests, the exit codes of its kernels, whether it is ready, or gone."""

    def __init__(self) -> None:
        self.replies: dict[int, dict[str, Any]] = {}
        #: requests whose spawn gave up waiting: a late fork is killed, not left running
        self.abandoned: set[int] = set()
        self.exits: dict[int, int] = {}
        self.ready: int | None = None
        self.gone = False


class ForkedProcess:
    """A kernel the zygote forked: ``pid``, ``poll`` and ``wait`` as on ``subprocess.Popen``."""

    def __init__(self, pid: int, zygote: Zygote | ZygoteBranch) -> None:
        self.pid = pid
        self._zygote = zygote

    def poll(self) -> int | None:
        return self._zygote.exit_code(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        code = self._zygote.wait_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0.0)
        return code


class Zygote:
    """A running fork server for Python kernels; :meth:`start` one, :meth:`spawn` kernels,
    :meth:`branch` a fork server that has imported more."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        state_dir: Path | None,
        owned_dir: Path | None = None,
    ) -> None:
        self._process = process
        self._state_dir = state_dir
        self._owned_dir = owned_dir
        self._cond = threading.Condition()
        self._server = _Server()
        self._branches: dict[int, _Server] = {}  # by the id of the request that forked it
        self._branch_ids: dict[int, int] = {}  # a branch's pid -> its id
        self._branch_pids: dict[int, int] = {}  # a branch's id -> its pid
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        assert process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(process.stdout,), name="zygote-reader", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        with self._cond:
            return not self._server.gone

    @property
    def _exits(self) -> dict[int, int]:
        """The exit codes reported and not yet waited for (by pid)."""
        return self._server.exits

    @classmethod
    def start(
        cls,
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_file: Path,
        state_dir: Path | None = None,
        timeout: float = START_TIMEOUT,
        check: Callable[[], None] | None = None,
        owned_dir: Path | None = None,
        preload: Sequence[str] = (),
        python: Path | None = None,
    ) -> Zygote:
        """Start the zygote with ``env`` in ``cwd`` (its own output goes to ``log_file``) and
        wait until it has made its imports; ``check`` is called while waiting, and whatever it
        raises propagates (the zygote is killed). It dies with the calling thread.
        ``owned_dir`` (its home, say) is deleted when it is closed, or when it fails to start.
        ``preload``: modules imported beyond ipykernel's, which its kernels then start with.
        ``python``: the interpreter it (and so every kernel it forks) runs on; the default
        runtime profile's (:func:`.launch.kernel_python`) when None."""
        cwd.mkdir(parents=True, exist_ok=True)
        try:
            interpreter = python or kernel_python()
        except KernelStartError as exc:
            raise ZygoteError(str(exc)) from exc
        with log_file.open("wb") as log:
            try:
                process = subprocess.Popen(
                    [str(interpreter), str(_SCRIPT), *preload],
                    cwd=cwd,
                    env=dict(env),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    start_new_session=True,
                    preexec_fn=die_with_parent(),  # one prctl call, async-signal-safe
                )
            except OSError as exc:
                if owned_dir is not None:
                    shutil.rmtree(owned_dir, ignore_errors=True)
                raise ZygoteError(f"cannot start the kernel zygote: {exc}") from exc
        if state_dir is not None:
            record_process(state_dir, process.pid, "zygote")
        zygote = cls(process, state_dir, owned_dir)
        zygote._await_ready(
            zygote._server, zygote.close, "the kernel zygote", log_file, timeout, check
        )
        return zygote

    def _await_ready(
        self,
        server: _Server,
        close: Callable[..., None],
        what: str,
        log_file: Path,
        timeout: float,
        check: Callable[[], None] | None,
    ) -> None:
        """Wait until ``server`` has made its imports; else ``close`` it and raise (the end of
        its log in the error); whatever ``check`` raises propagates, once it is closed."""
        deadline = time.monotonic() + timeout
        try:
            with self._cond:
                while server.ready is None and not server.gone:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(min(left, _CHECK_SECONDS))
                    if check is not None:
                        check()
                ready = server.ready is not None and not server.gone
        except BaseException:
            close(timeout=0)
            raise
        if not ready:
            tail = _log_tail(log_file)  # before the close removes its folder
            close(timeout=0)
            raise ZygoteError(f"{what} did not start{tail}")

    def spawn(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
    ) -> ForkedProcess:
        """Fork a kernel running ``argv`` (``python -m ipykernel_launcher ...``) in ``cwd``
        with ``env``, its output to ``log``."""
        return ForkedProcess(self._fork_kernel(None, argv, cwd=cwd, env=env, log=log), self)

    def branch(
        self,
        modules: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_file: Path,
        timeout: float = START_TIMEOUT,
        check: Callable[[], None] | None = None,
        owned_dir: Path | None = None,
    ) -> ZygoteBranch:
        """A zygote forked from this one that also imports ``modules`` (Spark's client, say):
        it skips the interpreter's start and ipykernel's imports, which a zygote of its own
        makes again. It lives as long as this zygote; the rest is as :meth:`start`."""
        cwd.mkdir(parents=True, exist_ok=True)
        request_id = next(self._ids)
        server = _Server()
        with self._cond:
            self._branches[request_id] = server
        request = {
            "id": request_id,
            "branch": list(modules),
            "cwd": str(cwd),
            "env": dict(env),
            "log": str(log_file),
        }
        try:
            pid = self._ask(self._server, request)
            with self._cond:
                self._branch_ids[pid] = request_id
                self._branch_pids[request_id] = pid
                if pid in self._server.exits:  # ended before its pid was known here
                    server.gone = True
            if self._state_dir is not None:
                record_process(self._state_dir, pid, "zygote")
            branch = ZygoteBranch(self, request_id, pid, server, owned_dir)
        except BaseException:
            if owned_dir is not None:
                shutil.rmtree(owned_dir, ignore_errors=True)
            raise
        self._await_ready(
            server, branch.close, "the kernel zygote's branch", log_file, timeout, check
        )
        return branch

    def _fork_kernel(
        self,
        branch: int | None,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
    ) -> int:
        """The pid of a kernel forked by this zygote, or by its ``branch``."""
        with self._cond:
            server = self._server if branch is None else self._branches[branch]
            parent = self.pid if branch is None else self._branch_pids[branch]
        request: dict[str, Any] = {
            "id": next(self._ids),
            "argv": list(argv),
            "cwd": str(cwd),
            "env": {**env, "JPY_PARENT_PID": str(parent)},  # ipykernel watches its parent
            "log": str(log),
        }
        if branch is not None:
            request["to"] = branch
        return self._ask(server, request)

    def _ask(self, server: _Server, request: dict[str, Any]) -> int:
        """Send a fork request and wait for the new process's pid."""
        request_id = int(request["id"])
        line = (json.dumps(request) + "\n").encode()
        stdin = self._process.stdin
        try:
            with self._write_lock:
                if stdin is None:
                    raise BrokenPipeError
                stdin.write(line)
                stdin.flush()
        except (OSError, ValueError) as exc:
            raise ZygoteError(f"the kernel zygote is gone: {exc}") from exc
        deadline = time.monotonic() + SPAWN_TIMEOUT
        with self._cond:
            while request_id not in server.replies and not server.gone:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            reply = server.replies.pop(request_id, None)
            if reply is None:
                server.abandoned.add(request_id)
        if reply is None:
            raise ZygoteError("the kernel zygote did not answer")
        if "pid" not in reply:
            raise ZygoteError(f"the kernel zygote could not fork: {reply.get('error')}")
        return int(reply["pid"])

    def _send(self, message: dict[str, Any]) -> None:
        """A message that needs no answer (a branch's end of input); none once it is gone."""
        stdin = self._process.stdin
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            if stdin is not None and not stdin.closed:
                stdin.write((json.dumps(message) + "\n").encode())
                stdin.flush()

    def exit_code(self, pid: int) -> int | None:
        """The exit code of a kernel this zygote forked, None while it runs. A kernel of a
        zygote that is gone is gone too (``PR_SET_PDEATHSIG``): -9."""
        return self._exit_code(self._server, pid)

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        return self._wait_exit(self._server, pid, timeout)

    def _exit_code(self, server: _Server, pid: int) -> int | None:
        with self._cond:
            if pid in server.exits:
                return server.exits[pid]
            return -9 if server.gone else None

    def _wait_exit(self, server: _Server, pid: int, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while pid not in server.exits and not server.gone:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return server.exits.pop(pid, -9)

    def close(self, timeout: float = 5.0) -> None:
        """Ask the zygote to stop: it exits once its last kernel has ended; killed if it has
        not within ``timeout`` seconds (its kernels then die with it)."""
        if self._process.stdin is not None:
            with self._write_lock, contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            if timeout <= 0:
                raise subprocess.TimeoutExpired("zygote", timeout)
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        self._reader.join(5)
        if self._state_dir is not None:
            forget_process(self._state_dir, self._process.pid)
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            try:
                message = json.loads(raw)
            except ValueError:
                logger.warning("kernel zygote: unreadable reply %r", raw[:200])
                continue
            with self._cond:
                server: _Server | None = self._server
                if "from" in message:
                    server = self._branches.get(int(message["from"]))
                if server is not None:
                    self._take(server, message)
                self._cond.notify_all()
        with self._cond:
            self._server.gone = True
            for branch in self._branches.values():
                branch.gone = True
            self._cond.notify_all()

    def _take(self, server: _Server, message: dict[str, Any]) -> None:
        """One message of a fork server (under the lock)."""
        if "ready" in message:
            server.ready = int(message["ready"])
        elif "exit" in message:
            pid = int(message["exit"])
            server.exits[pid] = int(message["code"])
            branch = self._branch_ids.get(pid) if server is self._server else None
            if branch is not None:
                self._branches[branch].gone = True
        elif "id" in message and int(message["id"]) in server.abandoned:
            server.abandoned.discard(int(message["id"]))
            if "pid" in message:  # forked after its spawn gave up: nobody owns it
                with contextlib.suppress(OSError):
                    os.kill(int(message["pid"]), signal.SIGKILL)
        elif "id" in message:
            server.replies[int(message["id"])] = message


class ZygoteBranch:
    """A fork server forked from a :class:`Zygote` (:meth:`Zygote.branch`): it has imported
    more, and forks kernels as the zygote does. It dies with the zygote."""

    def __init__(
        self,
        zygote: Zygote,
        branch_id: int,
        pid: int,
        server: _Server,
        owned_dir: Path | None,
    ) -> None:
        self._zygote = zygote
        self._id = branch_id
        self.pid = pid
        self._server = server
        self._owned_dir = owned_dir

    @property
    def alive(self) -> bool:
        with self._zygote._cond:
            return not self._server.gone

    def spawn(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
    ) -> ForkedProcess:
        """Fork a kernel, as :meth:`Zygote.spawn` does, from this branch."""
        pid = self._zygote._fork_kernel(self._id, argv, cwd=cwd, env=env, log=log)
        return ForkedProcess(pid, self)

    def exit_code(self, pid: int) -> int | None:
        return self._zygote._exit_code(self._server, pid)

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        return self._zygote._wait_exit(self._server, pid, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """End the branch's input: it exits once its last kernel has ended; killed if it has
        not within ``timeout`` seconds (its kernels then die with it)."""
        zygote = self._zygote
        zygote._send({"to": self._id, "close": True})
        if zygote.wait_exit(self.pid, max(timeout, 0.0)) is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            zygote.wait_exit(self.pid, 5)
        if zygote._state_dir is not None:
            forget_process(zygote._state_dir, self.pid)
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)


def _log_tail(log_file: Path) -> str:
    """``:`` and the end of a zygote's log, for an error message ("" when it is empty)."""
    with contextlib.suppress(OSError):
        tail = log_file.read_bytes()[-2000:].decode("utf-8", errors="replace").strip()
        if tail:
            return f":\n{tail}"
    return " in time"
