"""The kernel fork server ("zygote"), run as a script: ``python zygote_main.py`` (its client is
:mod:`orchestrator.local.runtime.zygote`).

It imports what every ipykernel imports before it answers (IPython, ipykernel, zmq,
tornado, jupyter_client, debugpy), freezes what the imports made (``gc.freeze``: a kernel's
collections skip it and leave the memory it shares with the zygote uncopied), then forks one
kernel per request. A forked kernel skips the interpreter start and those imports: 0.2 CPU-s
to a ready kernel instead of 0.7. Module names
given as arguments (``python zygote_main.py pyspark.sql.connect.session ...``) are imported too,
before the zygote answers: its kernels start with them loaded (the kernel pool's Spark
zygote); a failed import ends the zygote, with the error in its log.

Requests come on stdin, one JSON object per line: ``{"id", "argv", "cwd", "env", "log"}``,
where ``argv`` is the kernel's command line as :func:`.launch.kernel_argv` gives it
(``python -m ipykernel_launcher ...``). Replies go to stdout, one JSON object per line:
``{"id", "pid"}`` (or ``{"id", "error"}``) for a request, ``{"exit", "code"}`` when a kernel
ended (the zygote reaps its children; a signal is a negative code, as subprocess gives it).
The zygote exits when stdin closes and its last kernel has ended, or with its parent
(``PR_SET_PDEATHSIG``, armed by whoever started it).

A *branch* is a zygote forked from this one that imports more modules (the kernel pool's
Spark zygote): ``{"id", "branch": [modules], "cwd", "env", "log"}`` forks it (replied as a
kernel is, and its exit reported as a kernel's), with a pipe each way. A request with
``"to": id`` is passed on to that branch (``{"to": id, "close": true}`` ends its input), and
its replies come back with ``"from": id``. A branch dies with its zygote.

The child becomes what ``python -m ipykernel_launcher`` in ``cwd`` with ``env`` would be:
its own session, stdin from /dev/null, stdout and stderr to ``log``, the environment, the
working directory, ``sys.argv`` and ``sys.path`` of that command (``PYTHONPATH`` first, the
interpreter's own entries after), default signal handlers, no cached temp dir, the random
generators seeded anew from the OS (``random``'s and NumPy's global ones, when loaded: a fork
copies its parent's state, and two kernels would draw the same numbers), and then the
launcher's own code, run as ``__main__``. This file imports the standard library and
ipykernel only (and the modules it is given): the kernel sees no other module a fresh one
would not have loaded by then.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import signal
import sys
import traceback
from typing import Any

_PR_SET_PDEATHSIG = 1
#: the modules a kernel imports before it answers (importing them starts no thread);
#: ``ipykernel.debugger`` (debugpy) is imported by the kernel's init: 0.13-0.2 CPU-s, two
#: thirds of a forked kernel's start, when the zygote has not
_PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython",
)


def _base_path() -> list[str]:
    """The interpreter's own ``sys.path`` entries: without this script's folder (entry 0) and
    the ``PYTHONPATH`` entries the zygote was started with."""
    own = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return [p for p in sys.path[1:] if p not in own]


def _child(request: dict[str, Any], base_path: list[str], zygote: int, fds: list[int]) -> None:
    """In the forked child: become the kernel the request describes; never returns."""
    code = 1
    try:
        os.setsid()
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote:  # the zygote died before the signal was armed
            os._exit(1)
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.chdir(request["cwd"])
        env: dict[str, str] = request["env"]
        os.environ.clear()
        os.environ.update(env)
        import tempfile

        tempfile.tempdir = None  # gettempdir() reads the kernel's TMPDIR, not the zygote's
        _reseed()
        cwd = os.getcwd()  # noqa: PTH109 - a str, as Python puts it on sys.path
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [cwd, *extra, *base_path]  # what `python -m` in cwd starts with
        argv: list[str] = request["argv"]
        module = argv[2] if argv[1:2] == ["-m"] else "ipykernel_launcher"
        sys.argv[:] = [module, *argv[3:]]
        import runpy

        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:  # as Python's exit maps it: None is 0, a message is 1
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
    except BaseException:  # noqa: BLE001 - reported in the kernel's log, as Python would
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reseed() -> None:
    """Seed the global random generators loaded in the zygote from the OS, as their import
    did: a fork copies the zygote's state, so its kernels would draw the same numbers."""
    for name in ("random", "numpy.random"):
        module = sys.modules.get(name)
        if module is not None:
            module.seed()


def _reply(out: Any, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def _reap(out: Any, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError, ValueError):
            _reply(out, {"exit": pid, "code": code})


def _fork(
    request: dict[str, Any], base_path: list[str], zygote: int, private: list[int], out: Any
) -> int | None:
    """Fork the kernel ``request`` describes; its pid, or None (the error is replied)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError as exc:
        _reply(out, {"id": request["id"], "error": str(exc)})
        return None
    if pid == 0:
        _child(request, base_path, zygote, private)
    _reply(out, {"id": request["id"], "pid": pid})
    return pid


def _freeze_heap() -> None:
    """Move every object so far to the collector's permanent generation (``gc.freeze``)."""
    loaded = "gc" in sys.modules
    import gc

    gc.collect()
    gc.freeze()
    if not loaded:  # a fresh kernel has not imported it by its first cell: nor has a fork
        del sys.modules["gc"]


class _Branch:
    """A zygote this one forked (a *branch*): the ends of its request and reply pipes."""

    def __init__(self, branch_id: int, pid: int, requests: int, replies: int) -> None:
        self.id = branch_id
        self.pid = pid
        self.requests: int | None = requests  # written here, read by the branch
        self.replies = replies  # written by the branch, read here
        self.pending = b""

    def close_requests(self, private: list[int]) -> None:
        """End the branch's input: it exits once its last kernel has ended."""
        if self.requests is not None:
            _forget_fd(private, self.requests)
            self.requests = None


def _forget_fd(private: list[int], fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    with contextlib.suppress(ValueError):
        private.remove(fd)


def _branch_child(
    request: dict[str, Any],
    base_path: list[str],
    zygote: int,
    private: list[int],
    requests: int,
    replies: int,
) -> None:
    """In the forked child: import the request's modules and serve as a zygote of its own,
    on the pipes its parent made; never returns."""
    code = 1
    try:
        for fd in private:
            with contextlib.suppress(OSError):
                os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote:  # the zygote died before the signal was armed
            os._exit(1)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 2)  # its import errors and warnings, as a zygote of its own logs them
        os.close(log)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for name in request["branch"]:
            __import__(name)
        _freeze_heap()
        out = os.fdopen(replies, "w", encoding="utf-8")
        _serve(requests, out, base_path)
        code = 0
    except BaseException:  # noqa: BLE001 - in its log; its parent reports the exit code
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _fork_branch(
    request: dict[str, Any], base_path: list[str], zygote: int, private: list[int], out: Any
) -> _Branch | None:
    """Fork a zygote that also imports ``request["branch"]``; None when it cannot fork (the
    error is replied)."""
    to_branch = os.pipe()
    from_branch = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in (*to_branch, *from_branch):
            os.close(fd)
        _reply(out, {"id": request["id"], "error": str(exc)})
        return None
    if pid == 0:
        _branch_child(
            request,
            base_path,
            zygote,
            [*private, to_branch[1], from_branch[0]],
            to_branch[0],
            from_branch[1],
        )
    os.close(to_branch[0])
    os.close(from_branch[1])
    private += [to_branch[1], from_branch[0]]  # no kernel forked here may hold them
    _reply(out, {"id": request["id"], "pid": pid})
    return _Branch(int(request["id"]), pid, to_branch[1], from_branch[0])


def _serve(requests: int, out: Any, base_path: list[str]) -> None:
    """Fork what the requests on ``requests`` ask for, reply on ``out``, until the requests
    end and the last child has ended.

    A request is a kernel (``{"id", "argv", "cwd", "env", "log"}``), a branch (``{"id",
    "branch": [modules], "cwd", "env", "log"}``: a zygote forked from this one that imports
    the modules too), or a request for a branch (``{"to": id, ...}``, passed on to it;
    ``{"to": id, "close": true}`` ends its input). A branch's replies come back with
    ``"from": id``; its own exit is reported as a kernel's is."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):  # a forked kernel must not hold the request and reply pipes
        os.dup2(null, fd)
    os.close(null)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select through the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    private = [requests, out.fileno(), wake_read, wake_write]
    with contextlib.suppress(AttributeError):  # epoll, kqueue: a descriptor of their own
        private.append(selector.fileno())
    children: set[int] = set()
    branches: dict[int, _Branch] = {}  # by id
    zygote = os.getpid()
    _reply(out, {"ready": zygote})
    pending = b""
    open_input = True
    while open_input or children:
        for key, _ in selector.select(timeout=1.0):
            if key.fd == requests:
                data = os.read(requests, 1 << 16)
                if not data:
                    open_input = False
                    selector.unregister(requests)
                    for branch in branches.values():
                        branch.close_requests(private)
                    continue
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    request = json.loads(line)
                    if "to" in request:
                        _pass_on(request, branches.get(int(request["to"])), private, out)
                    elif "branch" in request:
                        forked = _fork_branch(request, base_path, zygote, private, out)
                        if forked is not None:
                            children.add(forked.pid)
                            branches[forked.id] = forked
                            selector.register(forked.replies, selectors.EVENT_READ, forked)
                    else:
                        pid = _fork(request, base_path, zygote, private, out)
                        if pid is not None:
                            children.add(pid)
            elif isinstance(key.data, _Branch):
                _relay(key.data, selector, private, out)
            else:
                with contextlib.suppress(OSError):
                    os.read(wake_read, 512)
        _reap(out, children)


def _pass_on(request: dict[str, Any], branch: _Branch | None, private: list[int], out: Any) -> None:
    """Give a request to its branch, as a request of its own (or answer it: the branch is
    gone)."""
    if branch is None or branch.requests is None:
        if "id" in request:
            _reply(out, {"from": request["to"], "id": request["id"], "error": "no such zygote"})
        return
    if request.get("close"):
        branch.close_requests(private)
        return
    try:
        passed = {key: value for key, value in request.items() if key != "to"}
        data = memoryview((json.dumps(passed) + "\n").encode())
        while data:  # a signal (SIGCHLD) can cut a write to a pipe short
            data = data[os.write(branch.requests, data) :]
    except OSError as exc:
        branch.close_requests(private)
        if "id" in request:
            _reply(out, {"from": branch.id, "id": request["id"], "error": str(exc)})


def _relay(branch: _Branch, selector: Any, private: list[int], out: Any) -> None:
    """A branch's replies, passed on with ``"from"``: its id."""
    try:
        data = os.read(branch.replies, 1 << 16)
    except OSError:
        data = b""
    if not data:
        selector.unregister(branch.replies)
        _forget_fd(private, branch.replies)
        branch.close_requests(private)
        return
    branch.pending += data
    while b"\n" in branch.pending:
        line, branch.pending = branch.pending.split(b"\n", 1)
        with contextlib.suppress(ValueError):
            _reply(out, {**json.loads(line), "from": branch.id})


def main() -> None:
    for name in (*_PRELOAD, *sys.argv[1:]):
        __import__(name)
    # what the imports made lives as long as the kernels: out of the collector's way. A
    # kernel's collections then skip it, and do not write to (and so copy) the pages it
    # shares with the zygote: 0.1-0.25 CPU-s less per kernel (the gc.freeze docs' advice
    # for a process that forks without exec)
    _freeze_heap()
    base_path = _base_path()
    requests = os.dup(0)  # read raw: a buffered reader could hold a second request unseen
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    _serve(requests, out, base_path)


if __name__ == "__main__":
    main()
    os._exit(0)  # the replies are flushed; skip the teardown of every module it imported
