"""No process outlives the local workspace that started it, however the workspace dies.

Three layers, each covering what the one before cannot:

1. **Parent-death signal** (:func:`die_with_parent`, Linux ``PR_SET_PDEATHSIG``): a kernel
   gets SIGKILL from the operating system the moment the thread that started it ends, and
   that thread (a task's worker) lives as long as the kernel, so the kernel dies with the
   server even on SIGKILL. It only reaches direct children: a ``%sh`` process, a child
   notebook's runner, processes that started their own session are not covered.
2. **Watchdog** (:func:`start_watchdog`, ``python -m orchestrator.local.runtime.watchdog``): one
   process per workspace, in its own session, reading a pipe whose only writer is the server.
   The server's death, SIGKILL included, closes the pipe; the watchdog then ends every process
   that carries this workspace's mark (:data:`OWNER_VARIABLE` = ``<state dir>|<instance>`` in
   its environment, inherited by everything a kernel or an engine starts) and was started
   before the server died.
3. **Restart** (:func:`reap_leftovers`): a workspace starting on a state dir that no other
   live workspace serves (:func:`sole_server`) ends the processes its records name
   (``<state_dir>/procs/<pid>.json``, written when a kernel starts, removed when it is killed,
   checked against the process's start time) and any process still carrying one of the state
   dir's marks: what is left when the watchdog itself was killed.

Standard library and psutil only: the watchdog and the kernel side import this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import orchestrator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import psutil

__all__ = [
    "OWNER_VARIABLE",
    "die_with_parent",
    "drop_mark",
    "end_processes",
    "forget_process",
    "new_mark",
    "owned_processes",
    "owner_env",
    "reap_leftovers",
    "record_process",
    "remove_socket_root",
    "remove_socket_roots",
    "socket_root",
    "sole_server",
    "start_watchdog",
]

log = logging.getLogger(__name__)

OWNER_VARIABLE = "ORCH_LOCAL_OWNER"
_MAX_SOCKET_BASE = 60  # room for "/orch-<10>-<10>/k-XXXXXXXX/k-5" within sun_path's 107 bytes
_PR_SET_PDEATHSIG = 1
_PRCTL: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError, AttributeError):
        _PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not after fork


_MARKS: dict[str, str] = {}  # state dir -> the mark of the workspace serving it in this process


def owner(state_dir: Path) -> str:
    return str(state_dir.resolve())


def socket_root(state_dir: Path) -> Path:
    """The folder where the kernels of the workspace now serving ``state_dir`` put their Unix
    sockets: one per workspace instance (named after its mark), under the system temporary
    directory because a socket path holds 107 bytes at most (``/tmp`` when ``$TMPDIR`` is
    long). Each kernel removes its own folder when killed; the watchdog removes this one when
    the workspace is gone, so a killed workspace leaves nothing there either."""
    return _socket_root_of(owner_env(state_dir)[OWNER_VARIABLE])


def _socket_root_of(mark: str) -> Path:
    return _socket_base() / f"{_socket_prefix(mark)}{_digest(mark)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _socket_base() -> Path:
    base = tempfile.gettempdir()
    if len(base) > _MAX_SOCKET_BASE:
        base = "/tmp"  # noqa: S108 - a short, always-present base for socket paths
    return Path(base)


def _socket_prefix(mark: str) -> str:
    """``orch-<digest of the state dir>-``: the socket roots of every workspace on it."""
    return f"orch-{_digest(mark.rsplit('|', 1)[0])}-"


def remove_socket_root(mark: str) -> None:
    """Remove the socket folder of the workspace with ``mark`` (the watchdog, at its end)."""
    import shutil

    shutil.rmtree(_socket_root_of(mark), ignore_errors=True)


def remove_socket_roots(state_dir: Path) -> None:
    """Remove the socket folders of every earlier workspace on ``state_dir`` (a workspace
    starting as its sole server: those are all gone, their watchdogs maybe with them)."""
    import shutil

    for root in _socket_base().glob(f"{_socket_prefix(owner(state_dir) + '|')}*"):
        shutil.rmtree(root, ignore_errors=True)


def new_mark(state_dir: Path) -> str:
    """A mark for one workspace on ``state_dir`` (``<state dir>|<instance>``), registered so
    :func:`owner_env` hands it out in this process."""
    mark = f"{owner(state_dir)}|{uuid.uuid4().hex[:12]}"
    _MARKS[owner(state_dir)] = mark
    return mark


def drop_mark(mark: str) -> None:
    state = mark.rsplit("|", 1)[0]
    if _MARKS.get(state) == mark:
        del _MARKS[state]


def owner_env(state_dir: Path) -> dict[str, str]:
    """The mark for the environment of every process started for the workspace at
    ``state_dir``; whatever those start inherits it. In a process that serves it, the
    workspace's own; in a child notebook's runner, the one it inherited."""
    state = owner(state_dir)
    inherited = os.environ.get(OWNER_VARIABLE, "")
    mark = _MARKS.get(state) or (inherited if inherited.startswith(state + "|") else state + "|")
    return {OWNER_VARIABLE: mark}


@contextlib.contextmanager
def sole_server(state_dir: Path) -> Iterator[bool]:
    """Hold ``<state_dir>/.server.lock`` if no other live workspace does: True when held."""
    handle = (state_dir / ".server.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        yield False
        return
    try:
        yield True
    finally:
        handle.close()  # releases the lock


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets SIGKILL when the calling
    thread ends (so call it from a thread that lives as long as the child). None off Linux."""
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec


# --- records -----------------------------------------------------------------------------
def _records(state_dir: Path) -> Path:
    return state_dir / "procs"


def record_process(state_dir: Path, pid: int, what: str) -> None:
    """Note a process the workspace started (a kernel), for :func:`reap_leftovers`."""
    import psutil

    with contextlib.suppress(OSError, psutil.Error):
        created = psutil.Process(pid).create_time()
        folder = _records(state_dir)
        folder.mkdir(exist_ok=True)
        data = {"pid": pid, "create_time": created, "what": what}
        (folder / f"{pid}.json").write_text(json.dumps(data), encoding="utf-8")


def forget_process(state_dir: Path, pid: int) -> None:
    (_records(state_dir) / f"{pid}.json").unlink(missing_ok=True)


def _recorded(state_dir: Path) -> list[psutil.Process]:
    import psutil

    found = []
    for record in sorted(_records(state_dir).glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, psutil.Error):
            data = json.loads(record.read_text(encoding="utf-8"))
            proc = psutil.Process(int(data["pid"]))
            if abs(proc.create_time() - float(data["create_time"])) < 0.01:
                found.append(proc)
        record.unlink(missing_ok=True)
    return found


# --- finding and ending ------------------------------------------------------------------
def owned_processes(
    state_dir: Path, *, mark: str | None = None, started_before: float | None = None
) -> list[psutil.Process]:
    """Processes carrying ``mark``, or any mark of ``state_dir`` (not this one), oldest first."""
    import psutil

    prefix, me = owner(state_dir) + "|", os.getpid()
    found = []
    for proc in psutil.process_iter(["create_time"]):
        if proc.pid == me:
            continue
        with contextlib.suppress(psutil.Error):
            value = proc.environ().get(OWNER_VARIABLE, "")
            if value != mark if mark is not None else not value.startswith(prefix):
                continue
            if started_before is None or proc.info["create_time"] <= started_before:
                found.append(proc)
    return sorted(found, key=lambda p: p.info["create_time"])


def end_processes(
    procs: Iterable[psutil.Process], *, process_group: int | None = None
) -> list[int]:
    """SIGKILL ``procs`` and all their descendants (and ``process_group``, if given): the one
    process-tree kill of the workspace, for a kernel, a leftover or an orphan.

    Every process is frozen with SIGSTOP first and the tree collected again until no new child
    appears, so none can escape by forking between the collection and the kill; then each is
    waited for until it is gone or a zombie (an orphan waits for init to reap it). Pass
    ``psutil.Process`` objects made while the processes surely existed: psutil then refuses to
    signal a reused pid. The pids that were alive.
    """
    import psutil

    frozen: set[psutil.Process] = set()
    pending = set(procs)
    while pending:  # stop each, then look for children it made before it stopped
        frozen |= pending
        for proc in pending:
            with contextlib.suppress(psutil.Error):
                proc.suspend()
        children: set[psutil.Process] = set()
        for proc in pending:
            with contextlib.suppress(psutil.Error):
                children.update(proc.children(recursive=True))
        pending = children - frozen
    if process_group is not None:
        with contextlib.suppress(OSError):
            os.killpg(process_group, signal.SIGKILL)
    for proc in frozen:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    for proc in _wait_dead(frozen, timeout=5.0):
        log.warning("process %s survived SIGKILL", proc.pid)
    return sorted(proc.pid for proc in frozen)


def _dead(proc: psutil.Process) -> bool:
    import psutil

    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_dead(procs: Iterable[psutil.Process], *, timeout: float) -> list[psutil.Process]:
    """Wait until all ``procs`` are gone or zombies; those that are not."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        alive = [proc for proc in alive if not _dead(proc)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return alive


def reap_leftovers(state_dir: Path) -> list[int]:
    """End what an earlier workspace on ``state_dir`` left running: recorded processes and
    every process with one of the state dir's marks. Call before starting anything, and only
    when no other workspace serves ``state_dir`` (:func:`sole_server`)."""
    remove_socket_roots(state_dir)
    leftovers = {p.pid: p for p in _recorded(state_dir)}
    for proc in owned_processes(state_dir, started_before=time.time()):
        leftovers.setdefault(proc.pid, proc)
    if not leftovers:
        return []
    ended = end_processes(leftovers.values())
    log.warning("ended %d processes left running by a previous local workspace", len(ended))
    return ended


def start_watchdog(mark: str) -> subprocess.Popen[bytes]:
    """Start the watchdog of the workspace with ``mark``; closing (or losing) its ``stdin``
    makes it end every process that carries the mark (see :mod:`.watchdog`)."""
    env = {k: v for k, v in os.environ.items() if k != OWNER_VARIABLE}
    package_root = Path(orchestrator.__file__).resolve().parents[1]  # where it is importable
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.local.runtime.watchdog", mark],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # a signal to the server's process group does not reach it
    )
