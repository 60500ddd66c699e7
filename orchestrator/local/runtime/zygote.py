"""Python kernels forked from a warm process: :class:`Zygote`, the client of ``_zygote.py``.

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
and ``/proc/<pid>/environ``
shows the zygote's initial environment (``os.environ``, subprocesses and the owner mark,
which the zygote carries too, are right).

Lifetime: the zygote gets ``PR_SET_PDEATHSIG`` from the thread that starts it and arms it in
every kernel it forks, so the chain ends with that thread; it reaps its kernels and reports
their exit codes, which :class:`ForkedProcess` gives as :class:`subprocess.Popen` would.
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
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from orchestrator.local.lifetime import die_with_parent, forget_process, record_process

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["ForkedProcess", "Zygote", "ZygoteError"]

logger = logging.getLogger(__name__)

_SCRIPT = Path(__file__).resolve().parent / "_zygote.py"
#: seconds for the zygote's imports (about a second on a 2-core machine; more under load)
START_TIMEOUT = 60.0
#: seconds for a fork's reply (a fork takes milliseconds)
SPAWN_TIMEOUT = 10.0
#: how often a wait for the zygote's start calls its ``check``
_CHECK_SECONDS = 0.1


class ZygoteError(RuntimeError):
    """The zygote could not be started, or it is gone."""


class ForkedProcess:
    """A kernel the zygote forked: ``pid``, ``poll`` and ``wait`` as on ``subprocess.Popen``."""

    def __init__(self, pid: int, zygote: Zygote) -> None:
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
    """A running fork server for Python kernels; :meth:`start` one, :meth:`spawn` kernels."""

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
        self._replies: dict[int, dict[str, Any]] = {}
        #: requests whose spawn gave up waiting: a late fork is killed, not left running
        self._abandoned: set[int] = set()
        self._exits: dict[int, int] = {}
        self._ready: int | None = None
        self._gone = False
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
            return not self._gone

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
    ) -> Zygote:
        """Start the zygote with ``env`` in ``cwd`` (its own output goes to ``log_file``) and
        wait until it has made its imports; ``check`` is called while waiting, and whatever it
        raises propagates (the zygote is killed). It dies with the calling thread.
        ``owned_dir`` (its home, say) is deleted when it is closed, or when it fails to start.
        ``preload``: modules imported beyond ipykernel's, which its kernels then start with."""
        cwd.mkdir(parents=True, exist_ok=True)
        with log_file.open("wb") as log:
            try:
                process = subprocess.Popen(
                    [sys.executable, str(_SCRIPT), *preload],
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
        deadline = time.monotonic() + timeout
        try:
            with zygote._cond:
                while zygote._ready is None and not zygote._gone:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    zygote._cond.wait(min(left, _CHECK_SECONDS))
                    if check is not None:
                        check()
                ready = zygote._ready is not None
        except BaseException:
            zygote.close(timeout=0)
            raise
        if not ready:
            tail = log_file.read_bytes()[-2000:].decode("utf-8", errors="replace").strip()
            zygote.close(timeout=0)
            raise ZygoteError(
                "the kernel zygote did not start" + (f":\n{tail}" if tail else " in time")
            )
        return zygote

    def spawn(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
    ) -> ForkedProcess:
        """Fork a kernel running ``argv`` (``python -m ipykernel_launcher ...``) in ``cwd``
        with ``env``, its output to ``log``."""
        request_id = next(self._ids)
        kernel_env = {**env, "JPY_PARENT_PID": str(self.pid)}  # ipykernel watches its parent
        request = {
            "id": request_id,
            "argv": list(argv),
            "cwd": str(cwd),
            "env": kernel_env,
            "log": str(log),
        }
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
            while request_id not in self._replies and not self._gone:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            reply = self._replies.pop(request_id, None)
            if reply is None:
                self._abandoned.add(request_id)
        if reply is None:
            raise ZygoteError("the kernel zygote did not answer")
        if "pid" not in reply:
            raise ZygoteError(f"the kernel zygote could not fork: {reply.get('error')}")
        return ForkedProcess(int(reply["pid"]), self)

    def exit_code(self, pid: int) -> int | None:
        """The exit code of a kernel this zygote forked, None while it runs. A kernel of a
        zygote that is gone is gone too (``PR_SET_PDEATHSIG``): -9."""
        with self._cond:
            if pid in self._exits:
                return self._exits[pid]
            return -9 if self._gone else None

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while pid not in self._exits and not self._gone:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return self._exits.pop(pid, -9)

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
                if "ready" in message:
                    self._ready = int(message["ready"])
                elif "exit" in message:
                    self._exits[int(message["exit"])] = int(message["code"])
                elif "id" in message and int(message["id"]) in self._abandoned:
                    self._abandoned.discard(int(message["id"]))
                    if "pid" in message:  # forked after its spawn gave up: nobody owns it
                        with contextlib.suppress(OSError):
                            os.kill(int(message["pid"]), signal.SIGKILL)
                elif "id" in message:
                    self._replies[int(message["id"])] = message
                self._cond.notify_all()
        with self._cond:
            self._gone = True
            self._cond.notify_all()
