"""One Jupyter kernel process: launch, handshake, execute code, and kill its whole process tree.

This module owns the kernel's operating-system side (the process, its session/process group,
its log file, the connection file) and the Jupyter messaging with it through a
``BlockingKernelClient`` whose shell and iopub channels are read synchronously in the calling
thread. It knows nothing about notebooks: :meth:`Kernel.execute` runs one piece of code and
hands every iopub message of that execution to a callback.

Every wait polls in short steps and calls ``check`` between them, so a cancel or a timeout
raised by the caller interrupts any wait within ~0.1 s. :meth:`Kernel.kill` freezes the
kernel and all its descendants (so none can fork away), kills them and the kernel's process
group, and reaps the kernel: no orphans, even for grandchildren such as a ``%sh sleep`` or a
child notebook's own kernel.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psutil

from orchestrator.local.runtime.lifetime import (
    die_with_parent,
    end_processes,
    forget_process,
    record_process,
    socket_root,
)
from orchestrator.local.state.jupyter_imports import jupyter_module

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "ExecuteReply",
    "Kernel",
    "KernelDiedError",
    "KernelProcess",
    "KernelStartError",
    "Spawn",
    "popen_kernel",
]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1
_IDLE_GRACE_SECONDS = 5.0
_LOG_TAIL_BYTES = 4000

Message = dict[str, Any]


class KernelProcess(Protocol):
    """The kernel's process as :class:`Kernel` uses it: a ``subprocess.Popen``, or a kernel a
    zygote forked (:class:`~.zygote.ForkedProcess`)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class Spawn(Protocol):
    """Starts a kernel's command in ``cwd`` with ``env``, its output to ``log`` (its own
    session; it dies with the thread that asked): what :meth:`Kernel.start` uses instead of
    ``subprocess.Popen`` when given one."""

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
    ) -> KernelProcess: ...


class KernelStartError(RuntimeError):
    """The kernel process could not be started or did not answer in time."""


class KernelDiedError(RuntimeError):
    """The kernel process exited while it was being used."""


@dataclass(frozen=True)
class ExecuteReply:
    """The shell reply to one execute request."""

    status: str  # "ok" | "error" | "aborted"
    execution_count: int | None
    ename: str | None
    evalue: str | None
    traceback: tuple[str, ...]


def _socket_dir(state_dir: Path | None) -> Path:
    """A fresh private folder for the kernel's Unix sockets, with a short path.

    Kernels talk over the ``ipc`` transport (Unix domain sockets) rather than loopback TCP:
    a TCP port chosen free here can be taken by another process (another build, another
    kernel) before the kernel binds it, and a client then talks to the wrong kernel (seen as
    ``Invalid Signature`` errors under load). A socket file in a folder only this kernel uses
    cannot collide. The folder is in the workspace's socket root
    (:func:`~orchestrator.local.runtime.lifetime.socket_root`), which its watchdog removes.
    """
    root = socket_root(state_dir) if state_dir is not None else Path(tempfile.gettempdir())
    for _ in range(3):
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            return Path(tempfile.mkdtemp(prefix="k-", dir=root))
        except FileNotFoundError:  # another kernel's kill removed the empty root meanwhile
            continue
    return Path(tempfile.mkdtemp(prefix="orch-k-"))


def _write_connection_file(path: Path, ip: Path) -> None:
    """The kernel's connection file, as jupyter_client's ``write_connection_file`` writes it
    for the ``ipc`` transport (the format is Jupyter's, documented with the kernel protocol):
    written here so the kernel launches before jupyter_client is imported. Readable by the
    owner only: it holds the key that signs the kernel's messages."""
    info = {
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "ip": str(ip),
        "key": os.urandom(32).hex(),
        "transport": "ipc",
        "signature_scheme": "hmac-sha256",
        "kernel_name": "",
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2)


def popen_kernel(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """The default :class:`Spawn`: the kernel as a process of its own."""
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # one prctl call, async-signal-safe
        )


class Kernel:
    """A running kernel process with a connected blocking client. Use :meth:`start`."""

    def __init__(
        self,
        process: KernelProcess,
        client: Any,
        log_file: Path,
        state_dir: Path | None = None,
        owned_dirs: tuple[Path, ...] = (),
    ) -> None:
        self._process = process
        self._owned_dirs = owned_dirs
        self._state_dir = state_dir
        self._ps: psutil.Process | None
        try:
            self._ps = psutil.Process(process.pid)
        except psutil.Error:  # gone already: its process group is still killed
            self._ps = None
        self._client = client
        self._log_file = log_file
        self._killed = False

    @property
    def pid(self) -> int:
        """The kernel process id."""
        return self._process.pid

    @property
    def exited(self) -> bool:
        """Whether the kernel process has ended (a kernel can die idle, e.g. with its zygote)."""
        return self._process.poll() is not None

    @classmethod
    def start(
        cls,
        *,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        work_dir: Path,
        check: Callable[[], None],
        start_timeout: float,
        state_dir: Path | None = None,
        owned_dir: Path | None = None,
        spawn: Spawn | None = None,
    ) -> Kernel:
        """Launch ``argv`` (``{connection_file}`` is substituted) and wait until it answers;
        with ``spawn``, through it (a zygote's fork) instead of a new process.

        The kernel gets SIGKILL when the calling thread ends (``PR_SET_PDEATHSIG``: call from
        the thread that will kill it), or, forked by a zygote, when the zygote ends; with
        ``state_dir`` the local workspace's state records it until it is killed, so a
        restarted workspace can end it (:mod:`orchestrator.local.runtime.lifetime`). ``owned_dir``
        (the kernel's home, say) is deleted when the kernel is killed.

        Raises :class:`KernelStartError` when the process exits or does not answer within
        ``start_timeout`` seconds; whatever ``check`` raises propagates (the process is killed).
        """
        connection_file = work_dir / "kernel-connection.json"
        log_file = work_dir / "kernel.log"
        socket_dir = _socket_dir(state_dir)
        _write_connection_file(connection_file, socket_dir / "k")
        command = [part.replace("{connection_file}", str(connection_file)) for part in argv]
        logger.debug("starting kernel %s in %s", command, cwd)
        try:
            process = (spawn or popen_kernel)(command, cwd=cwd, env=env, log=log_file)
        except (OSError, RuntimeError) as exc:
            shutil.rmtree(socket_dir, ignore_errors=True)
            raise KernelStartError(f"cannot start kernel {command[0]!r}: {exc}") from exc
        if state_dir is not None:
            record_process(state_dir, process.pid, "kernel")
        # imported once the kernel is launching: jupyter_client takes 0.3-0.5 s to import in
        # a busy process, which an R kernel's start (the first in its launcher thread) waited for
        client = _new_client()
        owned = (socket_dir,) if owned_dir is None else (socket_dir, owned_dir)
        kernel = cls(process, client, log_file, state_dir, owned)
        try:
            client.load_connection_file(str(connection_file))
            client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)  # noqa: S604
            kernel._handshake(check=check, start_timeout=start_timeout)
        except BaseException:
            kernel.kill()
            raise
        logger.debug("kernel %s ready", process.pid)
        return kernel

    def _handshake(self, *, check: Callable[[], None], start_timeout: float) -> None:
        """kernel_info until both a shell reply and an iopub message arrived (iopub is live)."""
        deadline = time.monotonic() + start_timeout
        replied = iopub_live = False
        next_request = 0.0
        while not (replied and iopub_live):
            check()
            self._ensure_alive(starting=True)
            now = time.monotonic()
            if now > deadline:
                raise KernelStartError(
                    f"kernel did not answer within {start_timeout:g} seconds{self._log_tail()}"
                )
            if now >= next_request:
                self._client.kernel_info()
                next_request = now + 1.0
            with contextlib.suppress(queue.Empty):
                self._client.iopub_channel.get_msg(timeout=POLL_SECONDS)
                iopub_live = True
            with contextlib.suppress(queue.Empty):
                while True:
                    msg = self._client.shell_channel.get_msg(timeout=0)
                    replied = replied or msg["msg_type"] == "kernel_info_reply"
        # Drain what the handshake left (status messages of the kernel_info requests).
        with contextlib.suppress(queue.Empty):
            while True:
                self._client.iopub_channel.get_msg(timeout=0.05)

    def _log_tail(self) -> str:
        try:
            data = self._log_file.read_bytes()[-_LOG_TAIL_BYTES:]
        except OSError:
            return ""
        text = data.decode("utf-8", errors="replace").strip()
        return f"\nkernel output:\n{text}" if text else ""

    def _ensure_alive(self, *, starting: bool = False) -> None:
        code = self._process.poll()
        if code is None:
            return
        what = "kernel exited during startup" if starting else "kernel process died"
        message = f"{what} (exit code {code}){self._log_tail()}"
        if starting:
            raise KernelStartError(message)
        raise KernelDiedError(message)

    def execute(
        self,
        code: str,
        *,
        on_message: Callable[[Message], None],
        check: Callable[[], None],
        silent: bool = False,
    ) -> ExecuteReply:
        """Run ``code``; every iopub message of it goes to ``on_message``; wait for the reply.

        Raises :class:`KernelDiedError` if the kernel exits meanwhile; whatever ``check``
        raises propagates (the caller then kills the kernel).
        """
        msg_id = self._client.execute(
            code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=True
        )
        reply: Message | None = None
        idle = False
        idle_deadline: float | None = None
        while not idle:
            check()
            try:
                msg = self._client.iopub_channel.get_msg(timeout=POLL_SECONDS)
            except queue.Empty:
                self._ensure_alive()
            else:
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    if msg["msg_type"] == "status":
                        idle = msg["content"].get("execution_state") == "idle"
                    else:
                        on_message(msg)
            if reply is None:
                reply = self._poll_reply(msg_id)
                if reply is not None:
                    idle_deadline = time.monotonic() + _IDLE_GRACE_SECONDS
            elif idle_deadline is not None and time.monotonic() > idle_deadline:
                logger.warning("kernel %s: no idle status after reply", self.pid)
                break
        while reply is None:
            check()
            self._ensure_alive()
            reply = self._poll_reply(msg_id, timeout=POLL_SECONDS)
        content = reply["content"]
        return ExecuteReply(
            status=str(content.get("status", "error")),
            execution_count=content.get("execution_count"),
            ename=content.get("ename"),
            evalue=content.get("evalue"),
            traceback=tuple(str(line) for line in content.get("traceback") or ()),
        )

    def _poll_reply(self, msg_id: str, timeout: float = 0) -> Message | None:
        try:
            while True:
                msg: Message = self._client.shell_channel.get_msg(timeout=timeout)
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    return msg
        except queue.Empty:
            return None

    def kill(self) -> None:
        """Kill the kernel and every process below it, close the channels. Idempotent."""
        if self._killed:
            return
        self._killed = True
        end_processes([self._ps] if self._ps else [], process_group=self._process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        if self._state_dir is not None:
            forget_process(self._state_dir, self._process.pid)
        with contextlib.suppress(Exception):
            self._client.shell_channel.close()
            self._client.iopub_channel.close()
            self._client.context.destroy(linger=0)
        for folder in self._owned_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        root = self._owned_dirs[0].parent
        if root.name.startswith("orch-"):
            with contextlib.suppress(OSError):  # the workspace's socket root, once empty
                root.rmdir()
        logger.debug("kernel %s killed", self._process.pid)


_CLIENT_LOCK = threading.Lock()


def _new_client() -> Any:
    """A ``BlockingKernelClient``, made under a lock: traitlets resolves a class's ``Instance``
    traits (a string naming a class, replaced by the class) on the class itself the first time
    an instance is made, and two threads doing that at once can see a half-resolved trait
    (``TypeError: import_item accepts strings, not MetaHasTraits``)."""
    with _CLIENT_LOCK:
        return jupyter_module("jupyter_client.blocking.client").BlockingKernelClient()
