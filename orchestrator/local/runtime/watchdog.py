"""``python -m orchestrator.local.runtime.watchdog MARK``: ends a local workspace's processes
once the workspace is gone.

Started by :func:`orchestrator.local.runtime.lifetime.start_watchdog` with a pipe as stdin whose
only writer is the workspace. It blocks reading it; end of file means the workspace stopped or died
(SIGKILL included: the kernel closes a dead process's files). It then ends every process that
carries the workspace's mark and was started before that moment, with their descendants, removes the
folder of its kernels' sockets, and exits. ``MARK`` is ``<state dir>|<instance>``. SIGINT and
SIGTERM are ignored (a terminal's Ctrl-C reaches the server, which closes the pipe itself when it
stops).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m orchestrator.local.runtime.watchdog MARK\n")
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # imported now, while the workspace starts, not when it stops and waits for this process
    from orchestrator.local.runtime.lifetime import (
        end_processes,
        owned_processes,
        remove_socket_root,
    )

    stdin = sys.stdin.buffer
    while stdin.read(4096):  # nothing is ever written: this returns b"" when the server is gone
        pass
    gone_at = time.time()
    mark = args[0]
    state_dir = Path(mark.rsplit("|", 1)[0])
    end_processes(owned_processes(state_dir, mark=mark, started_before=gone_at))
    remove_socket_root(mark)  # the kernels' socket folders, which killed kernels leave
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # the workspace waits for this exit: skip the interpreter's teardown
