"""The console script's quick exit (``orchestrator.cli.run``): what Python's own exit does that
matters (exit code, atexit handlers, flushed streams, non-daemon threads) still happens."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from orchestrator import __version__


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=False
    )


def _code(code: str) -> subprocess.CompletedProcess[str]:
    return _python("-c", textwrap.dedent(code))


def test_module_entry_prints_the_version_and_exits_0() -> None:
    done = _python("-m", "orchestrator", "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"orchestrator {__version__}")


def test_an_error_keeps_its_exit_code_and_one_line_message() -> None:
    done = _python("-m", "orchestrator", "plan", "--config", "/nonexistent/o.yml")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "orchestrator: error: o.yml: cannot read the file: No such file or directory"
    ]


def test_atexit_handlers_run_threads_finish_and_buffered_output_is_flushed() -> None:
    done = _code(
        """
        import atexit, sys, threading, time
        from orchestrator import cli

        atexit.register(lambda: sys.stdout.write("atexit ran\\n"))
        def late() -> None:
            time.sleep(0.3)
            sys.stdout.write("thread finished\\n")
        threading.Thread(target=late).start()
        sys.stdout.write("no newline yet")  # buffered: stdout is a pipe
        sys.argv = ["orchestrator", "--version"]
        cli.run()
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"no newline yetorchestrator {__version__}",
        "thread finished",
        "atexit ran",
    ]


def test_usage_errors_exit_2_with_argparse_message() -> None:
    done = _code(
        """
        import sys
        from orchestrator import cli
        sys.argv = ["orchestrator", "--bogus"]
        cli.run()
        """
    )
    assert done.returncode == 2
    assert "unrecognized arguments: --bogus" in done.stderr
