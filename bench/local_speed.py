"""Local builds against the kernel floor: ``python -m bench.local_speed``.

Measured one after another on this machine, in one run:

* **floor**: a bare ipykernel and a bare IRkernel started with jupyter_client, each running
  the sample's test scripts directly (``pytest.main`` and ``testthat::test_dir`` on the same
  folders the test notebooks run), the two in parallel; the floor is the slower of the two;
* **floor with its Spark tests**: the same, plus a third bare ipykernel, in parallel, that runs
  the sample's Spark task (its test notebook and the features notebook it calls, as plain
  Python) on a Sail server it starts itself (:func:`spark_code`): the demo's floor, as its
  third task runs those notebooks;
* **cold**: ``orchestrator build`` of the sample on the embedded workspace, in a fresh process;
* **warm**: the same build against an already running ``orchestrator local serve``, once its
  background work is done (CPUs idle, :func:`settle`), as between a developer's builds;
* both again for the sample **without its Spark task**, against the floor without Spark;
* **20 notebooks**: a generated repo of 10 Python and 10 R small test notebooks, built against
  a running ``local serve --max-workers 4``; its floor runs the same 20 scripts in bare kernels,
  4 at a time.

Each build is shown as a ratio to its floor, with its phases read from the build's own
progress lines as they appear: start-up (process start to the first line), prepare (cluster,
build root), deploy (notebooks and uploads), run (the build's job, run-now to the run's end),
collect, clean. Targets (issue: local builds in seconds): cold <= 2.0x, warm <= 1.5x, 20 notebooks
<= 1.5x of the floor.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.kit.sample import command, copy_sample_project, in_subprocess, workspace_flags
from bench.paths import REPO

TOKEN_ENV = "BENCH_SPEED_TOKEN"
PHASES = ("start-up", "prepare", "deploy", "run", "collect", "clean")
#: progress line prefixes (``==> ...``) that open each phase after start-up
_MARKS = (
    ("prepare", "==> cluster"),
    ("deploy", "==> deploy"),
    ("run", "==> run "),
    ("collect", "==> collect"),
    ("clean", "==> cleaned"),
)


# -- the floor: bare kernels running the test scripts ------------------------------------------


def run_in_kernel(kernel: str, code: str, cwd: Path) -> float:
    """Seconds from starting a bare ``kernel`` to the end of ``code`` in it."""
    from jupyter_client.manager import start_new_kernel

    started = time.perf_counter()
    manager, client = start_new_kernel(kernel_name=kernel, cwd=str(cwd))
    try:
        reply = client.execute_interactive(code, timeout=600, output_hook=lambda _msg: None)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{kernel}: {reply['content'].get('evalue')}")
        return time.perf_counter() - started
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def pytest_code(tests: Path, code_dir: Path, data: Path) -> str:
    return (
        "import os, sys, pytest\n"
        f"sys.path.insert(0, {str(code_dir)!r})\n"
        f"os.environ['CHURN_DATA_DIR'] = {str(data)!r}\n"
        f"os.environ['CHURN_CODE_DIR'] = {str(code_dir)!r}\n"
        f"assert pytest.main([{str(tests)!r}, '-q', '-p', 'no:cacheprovider']) == 0\n"
    )


def testthat_code(tests: Path, code_dir: Path, data: Path, model: Path) -> str:
    return (
        f"Sys.setenv(CHURN_DATA_DIR = {json.dumps(str(data))}, "
        f"CHURN_MODEL_PATH = {json.dumps(str(model))}, "
        f"CHURN_CODE_DIR = {json.dumps(str(code_dir))})\n"
        f"testthat::test_dir({json.dumps(str(tests))}, reporter = 'silent', "
        "stop_on_failure = TRUE)\n"
    )


def floor(jobs: Sequence[tuple[str, str, Path]], parallel: int) -> float:
    """Wall time of ``jobs`` (kernel, code, cwd) in bare kernels, ``parallel`` at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda job: run_in_kernel(*job), jobs))
    return time.perf_counter() - started


def sample_floor(project: Path, *, spark: bool = False) -> float:
    """The sample's floor: its pytest and testthat scripts in two bare kernels, in parallel;
    with ``spark``, its Spark task's notebooks in a third (:func:`spark_code`)."""
    tests = project / "databricks" / "tests"
    code_dir, data = project / "databricks", tests / "data"
    model = project / "models" / "churn_model.rds"
    jobs = [
        ("python3", pytest_code(tests / "pytest", code_dir, data), tests),
        ("ir", testthat_code(tests / "testthat", code_dir, data, model), tests),
    ]
    if spark:
        scratch = Path(tempfile.mkdtemp(prefix="spark-floor-", dir=project.parent))
        jobs.append(("python3", spark_code(project, data, scratch), tests))
    return floor(jobs, parallel=len(jobs))


#: the Spark task's notebook (in the sample's notebooks folder) and its parameters
SPARK_ENTRY = "tests/run_spark_tests"


def notebook_code(source: str) -> str:
    """A Databricks ``.py`` notebook as plain Python: its Markdown cells and header dropped."""
    cells = source.split("\n# COMMAND ----------\n")
    kept = []
    for cell in cells:
        lines = [
            line for line in cell.splitlines() if line.strip() != "# Databricks notebook source"
        ]
        if any(line.strip() and not line.startswith("# MAGIC") for line in lines):
            kept.append("\n".join(lines))
    return "\n\n".join(kept) + "\n"


def spark_code(project: Path, data: Path, scratch: Path) -> str:
    """The Spark task's bare work, run in a bare ipykernel: Sail's Spark Connect server
    started in the kernel (with the catalogs the local workspace gives its engine), one
    session, and the Spark task's test notebook run as plain Python, with its child
    notebook (``dbutils.notebook.run``) run the same way in a fresh namespace. ``dbutils``
    is reduced to widgets and ``notebook.run``/``exit``, ``display`` to fetching the rows
    (up to 10,000, as the runtime's ``display`` does). No orchestration: what a Spark test of
    the sample costs at the least. The JUnit XML goes to ``scratch/results``."""
    from orchestrator.local.runtime.spark_engines import sail_environment

    notebooks = project / "databricks"
    texts = {path: path.read_text() for path in notebooks.rglob("*.py")}
    sources = {
        path.relative_to(notebooks).with_suffix("").as_posix(): notebook_code(text)
        for path, text in texts.items()
        if text.startswith("# Databricks notebook source")
    }
    args = {
        "data_dir": str(data),
        "table": "main.churn_test.customer_features_floor",
        "results_dir": str(scratch / "results"),
    }
    return (
        inspect.getsource(_spark_floor)
        + f"_spark_floor({sources!r}, {SPARK_ENTRY!r}, {args!r}, {sail_environment()!r}, "
        f"{str(notebooks)!r}, {str(scratch / 'warehouse')!r})\n"
    )


def _spark_floor(  # runs in the floor's kernel: standard library, pysail and pyspark only
    sources: dict[str, str],
    entry: str,
    args: dict[str, str],
    sail_env: dict[str, str],
    root: str,
    warehouse: str,
) -> None:
    import os
    import posixpath
    import types

    os.environ.update(sail_env)
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    host, port = server.listening_address
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.readwriter import DataFrameReader

    csv = DataFrameReader.csv
    # as the runtime maps them (Sail reads no ``file:`` URLs): ``file:/x`` is ``/x``
    DataFrameReader.csv = lambda self, path, *a, **k: csv(self, path.removeprefix("file:"), *a, **k)
    spark = (
        SparkSession.builder.remote(f"sc://{host}:{port}")
        .config("spark.sql.warehouse.dir", warehouse)
        .create()
    )

    class Exit(Exception):
        pass

    def run(path: str, values: dict[str, str]) -> str:
        widgets = dict(values)

        def run_child(child: str, _timeout: int, child_args: dict[str, str]) -> str:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(path), child))
            return run(target, child_args)

        def leave(value: str) -> None:
            raise Exit(value)

        dbutils = types.SimpleNamespace(
            widgets=types.SimpleNamespace(
                text=lambda name, default, *_: widgets.setdefault(name, default),
                get=lambda name: widgets[name],
            ),
            notebook=types.SimpleNamespace(run=run_child, exit=leave),
        )
        space = {
            "__name__": "__main__",
            "spark": spark,
            "dbutils": dbutils,
            "display": lambda df, *_: df.limit(10_000).toPandas(),
        }
        here = os.getcwd()
        os.chdir(posixpath.join(root, posixpath.dirname(path)))
        try:
            exec(compile(sources[path], path, "exec"), space)  # the sample's own notebook
        except Exit as done:
            return str(done.args[0])
        finally:
            os.chdir(here)
        return ""

    run(entry, args)
    server.stop()


# -- builds, timed by phase --------------------------------------------------------------------


@dataclass
class Timing:
    total: float
    phases: dict[str, float] = field(default_factory=dict)


def timed_build(argv: list[str], *, cwd: Path, env: dict[str, str]) -> Timing:
    """Run a build, stamping each progress line as it appears; phases from the marks."""
    started = time.perf_counter()
    stamps: list[tuple[float, str]] = []
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        stamps.append((time.perf_counter() - started, line.rstrip("\n")))
    code = proc.wait()
    total = time.perf_counter() - started
    if code != 0:
        tail = "\n".join(line for _, line in stamps[-30:])
        raise RuntimeError(f"build failed ({code}):\n{tail}")
    return Timing(total, phase_times(stamps, total))


def phase_times(stamps: Sequence[tuple[float, str]], total: float) -> dict[str, float]:
    """Seconds per phase: each phase runs from its mark to the next phase's mark."""
    starts = {"start-up": 0.0}
    first = stamps[0][0] if stamps else total
    starts["prepare"] = first
    for phase, prefix in _MARKS:
        at = next((t for t, line in stamps if line.startswith(prefix)), None)
        if at is not None and phase != "prepare":
            starts[phase] = at
    ordered = [(p, starts[p]) for p in PHASES if p in starts]
    out: dict[str, float] = {}
    for i, (phase, begin) in enumerate(ordered):
        end = ordered[i + 1][1] if i + 1 < len(ordered) else total
        out[phase] = max(0.0, end - begin)
    return out


def settle(quiet: float = 0.9, seconds: int = 3, within: float = 90.0) -> None:
    """Wait until this machine's CPUs were at least ``quiet`` idle in each of ``seconds``
    one-second windows in a row (at most ``within`` seconds): a warm server has refilled its
    kernel pool, as it has between a developer's builds."""
    import psutil

    deadline = time.monotonic() + within
    calm = 0
    while time.monotonic() < deadline and calm < seconds:
        calm = calm + 1 if psutil.cpu_times_percent(interval=1.0).idle >= quiet * 100 else 0


def build_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "CI"))}
    env.update({"TF_BUILD": "", "GITHUB_ACTIONS": ""}, **extra)
    return env


@contextmanager
def local_serve(state: Path, *, max_workers: int) -> Iterator[tuple[str, str]]:
    """``orchestrator local serve`` in its own process; yields (url, token)."""
    token = "bench-" + os.urandom(8).hex()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "orchestrator", "local", "serve", "--port", "0"),
            *("--state-dir", str(state), "--token-env", TOKEN_ENV),
            *("--max-workers", str(max_workers), "--cluster-start-delay", "0"),
        ],
        env=build_env(**{TOKEN_ENV: token}),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if line.startswith("export DATABRICKS_HOST="):
            url = line.split("=", 1)[1].strip()
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    try:
        yield url, token
    finally:
        proc.terminate()
        proc.wait(30)


# -- the 20-notebook repo ----------------------------------------------------------------------


def make_repo(root: Path, per_language: int) -> Path:
    """``per_language`` Python and R test notebooks, each asserting a little arithmetic."""
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    tasks = []
    for i in range(per_language):
        py = root / "notebooks" / f"test_py_{i:02d}.py"
        py.write_text(
            "# Databricks notebook source\n"
            "import pytest, pathlib\n"
            f"p = pathlib.Path('/tmp') / 'bench_t{i}.py'\n"
            f"p.write_text('def test_{i}():\\n    assert {i} + 1 == {i + 1}\\n')\n"
            "assert pytest.main([str(p), '-q', '-p', 'no:cacheprovider']) == 0\n"
        )
        r = root / "notebooks" / f"test_r_{i:02d}.r"
        r.write_text(
            "# Databricks notebook source\n"
            "library(testthat)\n"
            f"test_that('sum {i}', expect_equal({i} + 1, {i + 1}))\n"
        )
        tasks += [f"test_py_{i:02d}", f"test_r_{i:02d}"]
    template = {
        "name": "${job_name}",
        "max_concurrent_runs": 20,
        "tasks": [
            {
                "task_key": key,
                "existing_cluster_id": "${cluster_id}",
                "notebook_task": {"notebook_path": key},  # relative to paths.notebooks
            }
            for key in tasks
        ],
    }
    (root / "job-template.json").write_text(json.dumps(template, indent=2))
    (root / "orchestrator.yml").write_text(
        "version: 1\ndefaults:\n  paths:\n    notebooks: notebooks\n"
    )
    return root


PLAIN = "demo without its Spark task"


def without_spark(project: Path) -> Path:
    """The sample without its Spark task: the build the floor without Spark stands for."""
    template = project / "job-template.json"
    settings = json.loads(template.read_text())
    settings["tasks"] = [t for t in settings["tasks"] if "spark" not in t["task_key"]]
    template.write_text(json.dumps(settings, indent=2))
    return project


def repo_floor(root: Path, per_language: int, parallel: int) -> float:
    jobs: list[tuple[str, str, Path]] = []
    for i in range(per_language):
        jobs.append(("python3", (root / "notebooks" / f"test_py_{i:02d}.py").read_text(), root))
        jobs.append(("ir", (root / "notebooks" / f"test_r_{i:02d}.r").read_text(), root))
    return floor(jobs, parallel)


# -- the table ---------------------------------------------------------------------------------


def render(rows: Sequence[tuple[str, float, Timing, str]]) -> str:
    head = "| build | floor | total | ratio | " + " | ".join(PHASES) + " | target |"
    lines = [head, "|---" * (5 + len(PHASES)) + "|"]
    for name, base, t, target in rows:
        phases = " | ".join(f"{t.phases.get(p, 0.0):.2f}" for p in PHASES)
        lines.append(
            f"| {name} | {base:.2f} s | {t.total:.2f} s | {t.total / base:.2f}x | {phases} "
            f"| {target} |"
        )
    return "\n".join(lines)


def median_timing(runs: int, once: Callable[[int], Timing]) -> Timing:
    samples = [once(i) for i in range(runs)]
    mid = sorted(samples, key=lambda t: t.total)[len(samples) // 2]
    return Timing(statistics.median(t.total for t in samples), mid.phases)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_speed", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="builds per figure (median)")
    parser.add_argument("--notebooks", type=int, default=10, help="per language, generated repo")
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, Timing, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        scratch = Path(tmp)
        project = copy_sample_project(scratch / "sample")
        base = statistics.median(sample_floor(project) for _ in range(args.runs))
        spark_base = statistics.median(sample_floor(project, spark=True) for _ in range(args.runs))

        def cold(i: int) -> Timing:
            argv = in_subprocess(*command(project, "build", "--build-id", f"cold{i}"))
            return timed_build(argv, cwd=project, env=build_env())

        plain = without_spark(copy_sample_project(scratch / "plain"))

        def plain_cold(i: int) -> Timing:
            argv = in_subprocess(*command(plain, "build", "--build-id", f"pc{i}"))
            return timed_build(argv, cwd=plain, env=build_env())

        rows.append(("demo, cold (embedded)", spark_base, median_timing(args.runs, cold), "≤ 2.0x"))
        rows.append((f"{PLAIN}, cold", base, median_timing(args.runs, plain_cold), "≤ 2.0x"))
        with local_serve(scratch / "serve", max_workers=4) as (url, token):
            remote = workspace_flags(url, f"env:{TOKEN_ENV}")
            env = build_env(**{TOKEN_ENV: token})

            def warm(i: int, project: Path = project) -> Timing:
                settle()
                argv = in_subprocess(*command(project, "build", "--build-id", f"w{i}", *remote))
                return timed_build(argv, cwd=project, env=env)

            warm(99)  # warms the server: kernels, the build root
            rows.append(
                ("demo, warm (local serve)", spark_base, median_timing(args.runs, warm), "≤ 1.5x")
            )
            warm(98, plain)
            plain_warm = median_timing(args.runs, lambda i: warm(i + 50, plain))
            rows.append((f"{PLAIN}, warm", base, plain_warm, "≤ 1.5x"))
            repo = make_repo(scratch / "repo20", args.notebooks)
            repo_base = repo_floor(repo, args.notebooks, parallel=4)

            def twenty(i: int) -> Timing:
                settle()
                argv = in_subprocess(
                    *command(repo, "build", "--build-id", f"r{i}", *remote, repo_name="repo20")
                )
                return timed_build(argv, cwd=repo, env=env)

            name = f"{2 * args.notebooks} notebooks, --max-workers 4"
            rows.append((name, repo_base, median_timing(args.runs, twenty), "≤ 1.5x"))
    print(f"Measured with python -m bench.local_speed ({args.runs} runs per figure), {REPO.name}")
    print(render(rows))
    print(
        f"\nFloors: {base:.2f} s for pytest and testthat (two bare kernels), {spark_base:.2f} s "
        "with the Spark task's notebooks in a third; the demo rows use the second."
    )
    for name, _, timing, _ in rows[:3:2]:
        print(f"{name}: {timing.total / base:.2f}x of the floor without Spark")
    return 0


if __name__ == "__main__":
    sys.exit(main())
