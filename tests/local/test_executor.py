"""Notebook runtime with real kernels: outputs, failures, magics, timeouts, cancel, dbutils."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from orchestrator.local.runtime import executor
from orchestrator.local.runtime.execution import NotebookResult
from orchestrator.local.state.notebook_format import CELL_RUN_METADATA, Language
from tests.local.runtime_helpers import (
    Workspace,
    assert_all_gone,
    read_pids,
    source,
    tiny_wheel,
    wait_for_file,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def executed(result: NotebookResult) -> nbformat.NotebookNode:
    node = nbformat.read(result.executed_notebook, as_version=4)
    nbformat.validate(node)
    return node


def text_of(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            parts.append(output.data.get("text/plain", ""))
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "".join(parts)


def test_python_success_with_outputs(runtime: Workspace) -> None:
    runtime.add(
        "/Users/a/nb",
        source(
            'print("héllo wörld ✓ 日本")\nx = 41',
            "# MAGIC %md\n# MAGIC # A title",
            "",
            "# only a comment",
            "from __future__ import annotations\n\n"
            "def f(a: Undefined) -> int:\n    return 1\n\nprint(f.__annotations__['a'])",
            "x + 1",
            "!echo hi from bang",
            "# MAGIC %sh\n# MAGIC echo sh says $ORCH_NOTEBOOK_PATH\n# MAGIC pwd",
            'import sys\nprint("to stderr", file=sys.stderr)',
            '# MAGIC %python\n# MAGIC print("python magic", x)',
            "import json, os\n"
            "print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('ORCH_')}))",
        ),
    )
    request = replace(
        runtime.request("/Users/a/nb", parameters={"p": "1"}, secrets={"s": {"k": "v"}}),
        environment={"ORCH_RUN_ID": "77", "ORCH_PARAMS": "overridden by the runtime"},
    )
    result = executor.execute_notebook(request, resolver=runtime.resolver, cancel=threading.Event())
    assert (result.status, result.error, result.exit_value) == ("SUCCESS", None, None)
    node = executed(result)
    cells = node.cells
    assert len(cells) == 11
    assert cells[0].outputs[0].text == "héllo wörld ✓ 日本\n"
    assert cells[1].cell_type == "markdown"
    assert cells[1].source == "# A title"
    assert cells[2].outputs == [] and cells[3].outputs == []
    assert text_of(cells[4]) == "Undefined\n"
    assert cells[5].outputs[0].output_type == "execute_result"
    assert cells[5].outputs[0].data["text/plain"] == "42"
    assert "hi from bang" in text_of(cells[6])
    sh_output = text_of(cells[7])
    assert "sh says /Users/a/nb" in sh_output
    assert "/Workspace/Users/a\n" in sh_output  # the kernel's cwd, spelled as on DBR 14+
    assert cells[8].outputs[0].name == "stderr"
    assert text_of(cells[9]) == "python magic 41\n"
    env = json.loads(text_of(cells[10]))
    scratch = result.executed_notebook.parent
    assert env["ORCH_NOTEBOOK_PATH"] == "/Users/a/nb"
    assert env["ORCH_WORKSPACE_ROOT"] == str(runtime.workspace_root)
    assert env["ORCH_DBFS_ROOT"] == str(runtime.dbfs_root)
    assert env["ORCH_CONTROL_DIR"] == str(scratch / "control")
    assert env["ORCH_PIP_TARGET"] == str(scratch / "site-packages")
    assert env["ORCH_STATE_DB"] == str(runtime.state_db)
    assert json.loads(env["ORCH_PARAMS"]) == {"p": "1"}
    assert json.loads(env["ORCH_SECRETS"]) == {"s": {"k": "v"}}
    assert env["ORCH_RUN_ID"] == "77"
    assert (scratch / "control").is_dir()
    assert "héllo wörld" in result.logs
    assert "to stderr" in result.logs


def test_failing_cell_stops_the_run(runtime: Workspace) -> None:
    runtime.add(
        "/Users/a/fails",
        source("x = 1", "# MAGIC %md\n# MAGIC text", "print('before')\n1 / 0", "print('never')"),
    )
    before = time.time() * 1000
    result = runtime.run("/Users/a/fails")
    after = time.time() * 1000
    assert result.status == "FAILED"
    assert result.error == "ZeroDivisionError: division by zero"
    assert result.failed_cell == 3
    assert result.error_trace is not None
    assert result.error_trace.startswith("Cell 3 of /Users/a/fails")
    assert "ZeroDivisionError" in result.error_trace
    assert "\x1b" not in result.error_trace
    cells = executed(result).cells
    assert [o.output_type for o in cells[2].outputs] == ["stream", "error"]
    assert cells[3].outputs == [] and cells[3].execution_count is None
    assert "division by zero" in result.logs
    # how and when each cell ran, for runs/export; the cell after the failure never started
    runs = [cell.metadata.get(CELL_RUN_METADATA) for cell in cells]
    assert [r and r["state"] for r in runs] == ["finished", "finished", "error", None]
    times = [t for r in runs[:3] for t in (r["start_ms"], r["finish_ms"])]
    assert before <= times[0] and times == sorted(times) and times[-1] <= after


def test_timeout_kills_the_kernel_and_its_children(runtime: Workspace, tmp_path: Path) -> None:
    pids = [tmp_path / f"pid{i}" for i in range(4)]
    runtime.add(
        "/Users/a/slow",
        source(
            f"import os\nopen({str(pids[0])!r}, 'w').write(str(os.getpid()))",
            "# MAGIC %sh\n"
            f"# MAGIC sleep 60 & echo $! > {pids[1]}\n"
            f"# MAGIC (sleep 61 & echo $! > {pids[2]})\n"
            f"# MAGIC echo $$ > {pids[3]}\n"
            "# MAGIC wait",
        ),
    )
    started = time.monotonic()
    result = runtime.run("/Users/a/slow", timeout=4)
    assert result.status == "TIMEDOUT"
    assert result.failed_cell == 2
    assert "timed out" in (result.error or "")
    assert time.monotonic() - started < 10
    assert_all_gone(read_pids(*pids))
    assert result.executed_notebook.exists()


def test_timeout_uses_the_given_clock(runtime: Workspace) -> None:
    runtime.add("/Users/a/clock", source("import time\ntime.sleep(30)"))
    now = [0.0]

    def clock() -> float:
        now[0] += 0.5  # half a fake second per poll: ~0.1 s of real time each
        return now[0]

    request = runtime.request("/Users/a/clock", timeout=20)
    started = time.monotonic()
    result = executor.execute_notebook(
        request, resolver=runtime.resolver, cancel=threading.Event(), clock=clock
    )
    assert result.status == "TIMEDOUT"
    assert time.monotonic() - started < 15


def test_cancel_ends_quickly_and_kills_the_tree(runtime: Workspace, tmp_path: Path) -> None:
    kernel_pid, sleep_pid = tmp_path / "kernel.pid", tmp_path / "sleep.pid"
    runtime.add(
        "/Users/a/cancel",
        source(
            f"import os\nopen({str(kernel_pid)!r}, 'w').write(str(os.getpid()))",
            f"# MAGIC %sh\n# MAGIC sleep 60 & echo $! > {sleep_pid}\n# MAGIC wait",
        ),
    )
    cancel = threading.Event()
    results: list[NotebookResult] = []
    thread = threading.Thread(
        target=lambda: results.append(runtime.run("/Users/a/cancel", cancel=cancel))
    )
    thread.start()
    pids = read_pids(kernel_pid, sleep_pid)
    cancel.set()
    started = time.monotonic()
    thread.join(timeout=60)
    # ended by the cancel, not by the cell (it waits 60 s): the speed is bench/cancel.py's
    assert time.monotonic() - started < 30
    assert results[0].status == "CANCELED"
    assert results[0].failed_cell == 2
    assert_all_gone(pids, within=10)


@pytest.mark.parametrize("language", ["PYTHON", "R"])
def test_processes_left_behind_die_with_the_kernel(
    runtime: Workspace, tmp_path: Path, language: Language
) -> None:
    orphan, child = tmp_path / "orphan.pid", tmp_path / "child.pid"
    if language == "PYTHON":
        start_child = (
            "import subprocess\n"
            f"open({str(child)!r}, 'w').write(str(subprocess.Popen(['sleep', '60']).pid))"
        )
    else:
        start_child = f"system('sleep 60 & echo $! > {child}')"
    runtime.add(
        "/Users/a/leaky",
        source(
            f"# MAGIC %sh\n# MAGIC (sleep 60 & echo $! > {orphan})\n# MAGIC echo started",
            start_child,
            language=language,
        ),
        language=language,
    )
    started = time.monotonic()
    result = runtime.run("/Users/a/leaky")
    assert result.status == "SUCCESS", result.error
    assert time.monotonic() - started < 10
    assert "started" in result.logs
    assert_all_gone(read_pids(orphan, child), within=10)


def test_cancel_before_start(runtime: Workspace) -> None:
    runtime.add("/Users/a/nb", source("print(1)"))
    cancel = threading.Event()
    cancel.set()
    result = runtime.run("/Users/a/nb", cancel=cancel)
    assert result.status == "CANCELED"
    assert result.executed_notebook.exists()


def test_run_includes_relative_and_absolute_notebooks(runtime: Workspace) -> None:
    runtime.add("/Users/a/proj/common", source("common_value = 7"))
    runtime.add(
        "/Users/a/proj/lib/helpers",
        source(
            "# MAGIC %run ../common",
            'greeting = "hi"\nprint("in helpers")',
            "def helper():\n    return common_value * 6",
        ),
    )
    runtime.add(
        "/Users/a/proj/main",
        source(
            "# MAGIC %run ./lib/helpers",
            "# MAGIC %run /Workspace/Users/a/proj/common",
            "print(greeting, helper(), common_value)",
        ),
    )
    result = runtime.run("/Users/a/proj/main")
    assert result.status == "SUCCESS", result.error
    cells = executed(result).cells
    assert text_of(cells[0]) == "in helpers\n"
    assert text_of(cells[2]) == "hi 42 7\n"


def test_run_failure_names_the_included_notebook(runtime: Workspace) -> None:
    runtime.add("/Users/a/proj/lib", source("x = 1", "raise ValueError('bad lib')"))
    runtime.add(
        "/Users/a/proj/main", source("print('start')", "# MAGIC %run ./lib", "print('never')")
    )
    result = runtime.run("/Users/a/proj/main")
    assert result.status == "FAILED"
    assert result.failed_cell == 2
    assert result.error == (
        "ValueError: bad lib "
        "[cell 2 of /Users/a/proj/lib (via %run in cell 2 of /Users/a/proj/main)]"
    )
    assert result.error_trace is not None
    assert result.error_trace.startswith("Cell 2 of /Users/a/proj/lib")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("./missing", "cell 1: %run ./missing: notebook not found: /Users/a/missing"),
        ("./loop", "circular %run of /Users/a/main"),
        ("./r_nb", "/Users/a/r_nb is a R notebook, not PYTHON"),
    ],
)
def test_run_errors(runtime: Workspace, target: str, message: str) -> None:
    runtime.add("/Users/a/loop", source("# MAGIC %run ./main"))
    runtime.add("/Users/a/r_nb", source("x <- 1", language="R"), language="R")
    runtime.add("/Users/a/main", source(f"# MAGIC %run {target}"))
    result = runtime.run("/Users/a/main")
    assert result.status == "FAILED"
    assert result.failed_cell == 1
    assert message in (result.error or "")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("# MAGIC %sh\n# MAGIC echo before\n# MAGIC exit 3", "shell command exited with code 3"),
        ("!echo before && false", "exited with code 1"),
    ],
)
def test_shell_failure_fails_the_cell(runtime: Workspace, cell: str, expected: str) -> None:
    runtime.add("/Users/a/sh", source("x = 1", cell, "print('never')"))
    result = runtime.run("/Users/a/sh")
    assert result.status == "FAILED"
    assert result.failed_cell == 2
    assert expected in (result.error or "")
    assert "ShellCommandError" in (result.error or "")
    assert "before" in text_of(executed(result).cells[1])


@pytest.mark.parametrize(
    ("language", "cell", "magic"),
    [
        ("PYTHON", "# MAGIC %r\n# MAGIC print(1)", "%r"),
        ("PYTHON", "# MAGIC %scala\n# MAGIC 1", "%scala"),
        ("R", "# MAGIC %python\n# MAGIC print(1)", "%python"),
    ],
)
def test_other_language_cells_fail_clearly(
    runtime: Workspace, language: Language, cell: str, magic: str
) -> None:
    runtime.add("/Users/a/nb", source("x = 1", cell, language=language), language=language)
    result = runtime.run("/Users/a/nb")
    assert result.status == "FAILED"
    assert result.failed_cell == 2
    lang = "Python" if language == "PYTHON" else "R"
    assert result.error == (
        f"cell 2: {magic} cells are not supported by the local workspace (in a {lang} notebook)"
    )
    assert text_of(executed(result).cells[1]).startswith("NotebookRuntimeError: cell 2:")


def test_long_output_is_truncated(runtime: Workspace) -> None:
    runtime.add(
        "/Users/a/loud",
        source(
            "print('x' * 3_000_000)",
            "for i in range(150_000):\n    print(f'line {i:07d}')",
            "print('after the noise')",
        ),
    )
    result = runtime.run("/Users/a/loud")
    assert result.status == "SUCCESS"
    cells = executed(result).cells
    first = text_of(cells[0])
    assert len(first) < 520_000
    assert "*** WARNING: output truncated" in first
    assert text_of(cells[2]) == "after the noise\n"
    assert len(result.logs) < 1_000_000
    assert "*** WARNING: logs truncated" in result.logs
    assert result.logs.rstrip().endswith("after the noise")


def test_scala_notebooks_are_not_supported(runtime: Workspace) -> None:
    runtime.add("/Users/a/q", source("val x = 1", language="SCALA"), language="SCALA")
    result = runtime.run("/Users/a/q")
    assert result.status == "FAILED"
    assert (result.error or "").startswith(
        "Scala notebooks are not supported by the local workspace"
    )
    assert executed(result).metadata.kernelspec.language == "scala"


def test_kernel_that_dies_at_start(runtime: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    def broken(language: Language, **_: object) -> list[str]:
        return [sys.executable, "-c", "print('no kernel here'); raise SystemExit(3)"]

    monkeypatch.setattr(executor, "kernel_argv", broken)
    runtime.add("/Users/a/nb", source("print(1)"))
    result = runtime.run("/Users/a/nb")
    assert result.status == "FAILED"
    assert "cannot start the kernel" in (result.error or "")
    assert "exit code 3" in (result.error or "")
    assert "no kernel here" in (result.error_trace or "")


def test_kernel_that_never_answers(
    runtime: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    pid_file = tmp_path / "silent.pid"

    def silent(language: Language, **_: object) -> list[str]:
        code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        return [sys.executable, "-c", code + "time.sleep(60)"]

    monkeypatch.setattr(executor, "kernel_argv", silent)
    monkeypatch.setattr(executor, "KERNEL_START_TIMEOUT", 1.0)
    runtime.add("/Users/a/nb", source("print(1)"))
    started = time.monotonic()
    result = runtime.run("/Users/a/nb")
    assert time.monotonic() - started < 5
    assert result.status == "FAILED"
    assert "did not answer within 1 seconds" in (result.error or "")
    assert_all_gone(read_pids(pid_file), within=10)


def test_kernel_that_dies_in_a_cell(runtime: Workspace) -> None:
    runtime.add("/Users/a/nb", source("print(1)", "import os\nos._exit(7)", "print(2)"))
    result = runtime.run("/Users/a/nb")
    assert result.status == "FAILED"
    assert result.failed_cell == 2
    assert result.error == "the Python kernel died unexpectedly while running cell 2"
    assert "exit code 7" in (result.error_trace or "")


def test_pip_install_goes_to_the_run_target(runtime: Workspace, tmp_path: Path) -> None:
    import importlib.util
    import sysconfig

    wheel = tiny_wheel(tmp_path)
    runtime.add(
        "/Users/a/pip",
        source(
            f"# MAGIC %pip install --no-index {wheel}",
            "import orch_tiny_pkg\nprint(orch_tiny_pkg.VALUE, orch_tiny_pkg.__file__)",
        ),
    )
    result = runtime.run("/Users/a/pip")
    assert result.status == "SUCCESS", (result.error, result.logs)
    target = result.executed_notebook.parent / "site-packages"
    assert (target / "orch_tiny_pkg" / "__init__.py").exists()
    cells = executed(result).cells
    assert "+ orch-tiny-pkg==0.1" in text_of(cells[0])  # uv's line
    assert text_of(cells[1]) == f"tiny works {target / 'orch_tiny_pkg' / '__init__.py'}\n"
    assert importlib.util.find_spec("orch_tiny_pkg") is None
    assert not (Path(sysconfig.get_paths()["purelib"]) / "orch_tiny_pkg").exists()


def test_pip_install_failure_fails_the_cell_with_the_installers_own_error(
    runtime: Workspace, tmp_path: Path
) -> None:
    runtime.add("/Users/a/pip", source("# MAGIC %pip install --no-index orch-no-such-package-x"))
    result = runtime.run("/Users/a/pip")
    assert result.status == "FAILED"
    assert result.failed_cell == 1
    error = result.error or ""
    assert error.startswith(
        "ShellCommandError: pip install failed: cannot resolve the requirements: Because "
        "orch-no-such-package-x was not found"
    ), error
    output = text_of(executed(result).cells[0])
    assert output.count("cause: Because orch-no-such-package-x") == 1  # uv's lines, once
    assert "\x1b" not in output + error + (result.logs or "")


# --------------------------------------------------------------------------- R


def test_r_notebook_success(runtime: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LC_ALL", "LC_CTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C")  # the kernel still gets a UTF-8 locale
    runtime.add(
        "/Users/a/r",
        source(
            'x <- 41\ncat("héllo ✓ 日本\\n")',
            "# MAGIC %md\n# MAGIC notes",
            "# MAGIC %sh\n# MAGIC echo from sh; pwd",
            "# comment only",
            "x + 1",
            '# MAGIC %r\n# MAGIC message("to stderr")',
        ),
        language="R",
    )
    result = runtime.run("/Users/a/r")
    assert result.status == "SUCCESS", (result.error, result.error_trace)
    cells = executed(result).cells
    assert executed(result).metadata.kernelspec.name == "ir"
    assert text_of(cells[0]) == "héllo ✓ 日本\n"
    assert text_of(cells[2]) == f"from sh\n{runtime.workspace_root / 'Users/a'}\n"
    assert text_of(cells[4]) == "[1] 42"
    assert "to stderr" in text_of(cells[5])


def test_r_notebook_failure(runtime: Workspace) -> None:
    runtime.add("/Users/a/r", source("x <- 1", 'stop("boom")', "print(2)"), language="R")
    result = runtime.run("/Users/a/r")
    assert result.status == "FAILED"
    assert result.failed_cell == 2
    assert result.error == "Error: boom"
    assert (result.error_trace or "").startswith("Cell 2 of /Users/a/r")


def test_r_shell_failure(runtime: Workspace) -> None:
    runtime.add("/Users/a/r", source("# MAGIC %sh\n# MAGIC echo out; exit 4"), language="R")
    result = runtime.run("/Users/a/r")
    assert result.status == "FAILED"
    assert result.error == "Error: shell command exited with code 4"
    assert "out" in text_of(executed(result).cells[0])


# --------------------------------------------------------------------------- dbutils shims


def test_python_widgets_and_exit(runtime: Workspace) -> None:
    runtime.add(
        "/Users/a/exit",
        source(
            'dbutils.widgets.text("name", "default")',
            'name = dbutils.widgets.get("name")',
            'dbutils.notebook.exit("hello " + name)',
            "raise RuntimeError('not reached')",
        ),
    )
    result = runtime.run("/Users/a/exit", parameters={"name": "world"})
    assert (result.status, result.exit_value, result.error) == ("SUCCESS", "hello world", None)
    cells = executed(result).cells
    assert all(o.output_type != "error" for o in cells[2].outputs)
    assert cells[3].execution_count is None


def test_r_widgets_and_exit(runtime: Workspace) -> None:
    runtime.add(
        "/Users/a/exit",
        source(
            'dbutils.widgets.text("name", "default")',
            'name <- dbutils.widgets.get("name")',
            'dbutils.notebook.exit(paste("hello", name))',
            'stop("not reached")',
        ),
        language="R",
    )
    result = runtime.run("/Users/a/exit", parameters={"name": "R"})
    assert (result.status, result.exit_value, result.error) == ("SUCCESS", "hello R", None)
    assert all(o.output_type != "error" for o in executed(result).cells[2].outputs)


def test_exit_inside_run_included_notebook(runtime: Workspace) -> None:
    runtime.add("/Users/a/inner", source('dbutils.notebook.exit("from inner")'))
    runtime.add(
        "/Users/a/outer", source("# MAGIC %run ./inner", "raise RuntimeError('not reached')")
    )
    result = runtime.run("/Users/a/outer")
    assert (result.status, result.exit_value) == ("SUCCESS", "from inner")


def test_control_dir_is_fresh_per_run(runtime: Workspace) -> None:
    runtime.add("/Users/a/nb", source('dbutils.notebook.exit("x")'))
    first = runtime.run("/Users/a/nb")
    second = runtime.run("/Users/a/nb")
    assert first.executed_notebook.parent != second.executed_notebook.parent
    assert wait_for_file(first.executed_notebook.parent / "control" / "exit.json")
