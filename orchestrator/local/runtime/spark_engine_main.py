"""``python -m orchestrator.local.runtime.spark_engine_main``: the Spark engine process of one
cluster.

Started by :class:`~orchestrator.local.runtime.spark_engines.SparkEngine`. It starts Sail's Spark
Connect server (``pysail``) on a free 127.0.0.1 port, writes ``{"host", "port", "pid"}`` to
``--endpoint-file`` once it listens, and runs until SIGTERM/SIGINT or until the process that
started it is gone (checked twice a second), so a SIGKILLed local workspace leaves no engine
behind. The catalogs and defaults come from the ``SAIL_*`` environment the parent sets.

Sail 0.7.2 has no authentication on its Spark Connect endpoint (no token or interceptor
setting), so the endpoint is protected by binding 127.0.0.1 only, on a random port.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.files import write_json_atomically

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

__all__ = ["main"]

_PARENT_POLL_SECONDS = 0.5


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.local.runtime.spark_engine_main")
    parser.add_argument("--endpoint-file", required=True, type=Path)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--parent-pid", required=True, type=int)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(args.workdir)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from pysail.spark import SparkConnectServer  # type: ignore[import-untyped, import-not-found, unused-ignore]

    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    address = server.listening_address
    if address is None:
        sys.stderr.write("the Spark Connect server did not start\n")
        return 1
    write_json_atomically(
        args.endpoint_file, {"host": address[0], "port": int(address[1]), "pid": os.getpid()}
    )
    try:
        while not stop.wait(_PARENT_POLL_SECONDS):
            if os.getppid() != args.parent_pid:
                break  # the local workspace is gone: so is its cluster
    finally:
        args.endpoint_file.unlink(missing_ok=True)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
