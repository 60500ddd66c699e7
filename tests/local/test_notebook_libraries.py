"""Notebook-scoped libraries with real kernels: ``%pip`` (anywhere in a cell), a stray
``!pip``, source builds, ``restartPython``, the environment cache, a task's libraries and a
serverless environment, and nothing written outside the run.

The source builds use a setuptools backend: the build's isolated environment fetches
setuptools from PyPI (the package registry is the one network these tests use)."""

from __future__ import annotations

import base64
import io
import sysconfig
import tarfile
from pathlib import Path

import pytest
from databricks.sdk.service import compute, jobs
from databricks.sdk.service import workspace as ws_service

from orchestrator.local.runtime.env_cache import cache_root
from orchestrator.local.runtime.execution import NotebookResult
from orchestrator.local.server import LocalWorkspace
from tests.local.runtime_helpers import Workspace, source, tiny_wheel

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def cell_output(result: NotebookResult, index: int) -> str:
    """The text a cell of the executed notebook printed (streams and errors)."""
    import json

    cell = json.loads(result.executed_notebook.read_text())["cells"][index]
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            text = output["text"]
            parts.append(text if isinstance(text, str) else "".join(text))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "".join(parts)


def tiny_sdist(directory: Path, name: str = "orch_src_pkg") -> Path:
    """An sdist of ``<name>`` 0.1 built with setuptools (``import <name>; <name>.VALUE``)."""
    files = {
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=61"]\n'
            'build-backend = "setuptools.build_meta"\n'
            f'[project]\nname = "{name}"\nversion = "0.1"\n'
        ),
        f"{name}/__init__.py": "VALUE = 'built from source'\n",
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
    }
    sdist = directory / f"{name}-0.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-0.1/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return sdist


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def outside_the_run(runtime: Workspace, before: set[Path]) -> list[Path]:
    """Files new since ``before`` in the test's folder that are neither in a run's scratch
    nor in the workspace's install caches."""
    cache = cache_root(runtime.root)
    return sorted(
        p
        for p in files_under(runtime.root) - before
        if not p.relative_to(runtime.root).parts[0].startswith("scratch-")
        and cache not in p.parents
        and p != runtime.state_db
    )


def test_a_runner_notebook_installs_requirements_with_a_source_build(
    runtime: Workspace, tmp_path: Path
) -> None:
    folder = runtime.workspace_root / "Repos" / "a" / "project"
    folder.mkdir(parents=True)
    tiny_sdist(folder)
    tiny_wheel(folder)
    (folder / "requirements.txt").write_text(
        "./orch_src_pkg-0.1.tar.gz\n./orch_tiny_pkg-0.1-py3-none-any.whl\n"
    )
    runtime.add(
        "/Repos/a/project/runner",
        source(
            "# MAGIC %pip install -r requirements.txt",
            "import orch_src_pkg, orch_tiny_pkg\n"
            "dbutils.notebook.exit(orch_src_pkg.VALUE + ', ' + orch_tiny_pkg.VALUE)",
        ),
    )
    venv_site = Path(sysconfig.get_paths()["purelib"])
    venv_before = files_under(venv_site)
    before = files_under(runtime.root)
    result = runtime.run("/Repos/a/project/runner")
    assert result.status == "SUCCESS", (result.error, result.logs)
    assert result.exit_value == "built from source, tiny works"
    target = result.executed_notebook.parent / "site-packages"
    assert (target / "orch_src_pkg" / "__init__.py").is_file()
    assert files_under(venv_site) == venv_before  # nothing in the runtime's environment
    assert outside_the_run(runtime, before) == []


def test_a_pip_line_after_another_line_is_the_managed_one(
    runtime: Workspace, tmp_path: Path
) -> None:
    wheel = tiny_wheel(tmp_path)
    runtime.add(
        "/Users/a/nb",
        source(
            f"!cp {wheel} $TMPDIR/\nimport os\n"
            f"copied = os.path.join(os.environ['TMPDIR'], {wheel.name!r})\n"
            "%pip install --no-index $copied",
            "import orch_tiny_pkg\ndbutils.notebook.exit(orch_tiny_pkg.__file__)",
        ),
    )
    result = runtime.run("/Users/a/nb")
    assert result.status == "SUCCESS", (result.error, result.logs)
    target = result.executed_notebook.parent / "site-packages"
    assert result.exit_value == str(target / "orch_tiny_pkg" / "__init__.py")
    output = cell_output(result, 0)
    assert "+ orch-tiny-pkg==0.1" in output  # the managed installer's output
    assert "you may need to restart the kernel" not in output  # not IPython's own %pip


def test_restart_python_keeps_the_installs(runtime: Workspace, tmp_path: Path) -> None:
    wheel = tiny_wheel(tmp_path)
    runtime.add(
        "/Users/a/nb",
        source(
            f"# MAGIC %pip install --no-index {wheel}",
            "dbutils.library.restartPython()",
            "import orch_tiny_pkg\ndbutils.notebook.exit(orch_tiny_pkg.VALUE)",
        ),
    )
    result = runtime.run("/Users/a/nb")
    assert result.status == "SUCCESS", (result.error, result.logs)
    assert result.exit_value == "tiny works"


def test_a_stray_pip_builds_from_source_into_the_run(runtime: Workspace, tmp_path: Path) -> None:
    """``PIP_TARGET`` in a kernel's environment broke every source build (``Cannot set --home
    and --prefix together``); ``PIP_PREFIX`` keeps a stray pip in the run and builds work."""
    sdist = tiny_sdist(tmp_path, "orch_stray_pkg")
    runtime.add(
        "/Users/a/nb",
        source(
            "import sys, subprocess\n"
            f"subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', {str(sdist)!r}], "
            "check=True)",
            "dbutils.library.restartPython()",
            "import orch_stray_pkg\ndbutils.notebook.exit(orch_stray_pkg.__file__)",
        ),
    )
    venv_site = Path(sysconfig.get_paths()["purelib"])
    result = runtime.run("/Users/a/nb")
    assert result.status == "SUCCESS", (result.error, result.logs)
    target = result.executed_notebook.parent / "site-packages"
    assert Path(result.exit_value or "").resolve().parent == (target / "orch_stray_pkg").resolve()
    assert not (venv_site / "orch_stray_pkg").exists()


def test_the_second_install_reuses_the_environment_built_for_its_resolution(
    runtime: Workspace, tmp_path: Path
) -> None:
    wheel = tiny_wheel(tmp_path)
    runtime.add(
        "/Users/a/nb",
        source(
            f"# MAGIC %pip install --no-index {wheel}",
            "import orch_tiny_pkg\ndbutils.notebook.exit(orch_tiny_pkg.VALUE)",
        ),
    )
    first = runtime.run("/Users/a/nb")
    second = runtime.run("/Users/a/nb")
    assert (first.status, second.status) == ("SUCCESS", "SUCCESS"), (first.error, second.error)
    assert "Stored the environment for this resolution" in cell_output(first, 0)
    reused = cell_output(second, 0)
    assert "Reused the environment built for this resolution (1 packages" in reused
    installed = second.executed_notebook.parent / "site-packages" / "orch_tiny_pkg"
    cached = next((cache_root(runtime.root) / "envs").glob("*/orch_tiny_pkg"))
    # the run's copy is made of links to the cached files, in folders of its own
    assert (installed / "__init__.py").samefile(cached / "__init__.py")
    assert not installed.samefile(cached)


def _notebook(code: str) -> str:
    return base64.b64encode(f"# Databricks notebook source\n{code}\n".encode()).decode()


def test_task_libraries_and_a_serverless_environment_install_for_their_runs(
    client,  # type: ignore[no-untyped-def]
    workspace: LocalWorkspace,
    tmp_path: Path,
) -> None:
    wheel = tiny_wheel(tmp_path)
    client.dbfs.upload(f"/libs/{wheel.name}", io.BytesIO(wheel.read_bytes()))
    sdist = tiny_sdist(tmp_path)
    client.workspace.mkdirs("/Users/a")
    client.workspace.upload(
        f"/Users/a/{sdist.name}",
        io.BytesIO(sdist.read_bytes()),
        format=ws_service.ImportFormat.AUTO,
    )
    client.workspace.import_(
        "/Users/a/uses_tiny",
        content=_notebook("import orch_tiny_pkg\ndbutils.notebook.exit(orch_tiny_pkg.VALUE)"),
        language=ws_service.Language.PYTHON,
        format=ws_service.ImportFormat.SOURCE,
    )
    client.workspace.import_(
        "/Users/a/uses_src",
        content=_notebook("import orch_src_pkg\ndbutils.notebook.exit(orch_src_pkg.VALUE)"),
        language=ws_service.Language.PYTHON,
        format=ws_service.ImportFormat.SOURCE,
    )
    job = client.jobs.create(
        name="libraries",
        environments=[
            jobs.JobEnvironment(
                environment_key="default",
                spec=compute.Environment(
                    environment_version="2", dependencies=[f"/Workspace/Users/a/{sdist.name}"]
                ),
            )
        ],
        tasks=[
            jobs.Task(
                task_key="with_libraries",
                notebook_task=jobs.NotebookTask(notebook_path="/Users/a/uses_tiny"),
                libraries=[compute.Library(whl=f"dbfs:/libs/{wheel.name}")],
            ),
            jobs.Task(
                task_key="serverless",
                notebook_task=jobs.NotebookTask(notebook_path="/Users/a/uses_src"),
                environment_key="default",
            ),
        ],
    )
    run = client.jobs.run_now(job_id=job.job_id).result()
    outputs = {task.task_key: client.jobs.get_run_output(task.run_id) for task in run.tasks or []}
    states = {key: out.metadata.state.result_state.value for key, out in outputs.items()}  # type: ignore[union-attr]
    assert states == {"with_libraries": "SUCCESS", "serverless": "SUCCESS"}, {
        key: out.error for key, out in outputs.items()
    }
    assert outputs["with_libraries"].notebook_output.result == "tiny works"  # type: ignore[union-attr]
    assert outputs["serverless"].notebook_output.result == "built from source"  # type: ignore[union-attr]


def _entry_point_wheel() -> bytes:
    """A wheel of ``orch-hello`` whose entry point ``main`` prints a line."""
    import zipfile

    files = {
        "orch_hello/__init__.py": "def main():\n    print('hello from the environment')\n",
        "orch_hello-1.0.dist-info/METADATA": (
            "Metadata-Version: 2.1\nName: orch-hello\nVersion: 1.0\n"
        ),
        "orch_hello-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        "orch_hello-1.0.dist-info/entry_points.txt": "[console_scripts]\nmain = orch_hello:main\n",
    }
    files["orch_hello-1.0.dist-info/RECORD"] = "".join(f"{name},,\n" for name in files) + (
        "orch_hello-1.0.dist-info/RECORD,,\n"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def test_a_serverless_wheel_task_gets_its_wheel_from_its_environment(
    client,  # type: ignore[no-untyped-def]
    workspace: LocalWorkspace,
) -> None:
    client.workspace.mkdirs("/Users/a/dist")
    client.workspace.upload(
        "/Users/a/dist/orch_hello-1.0-py3-none-any.whl",
        io.BytesIO(_entry_point_wheel()),
        format=ws_service.ImportFormat.AUTO,
    )
    run = client.jobs.submit(
        run_name="serverless wheel",
        environments=[
            jobs.JobEnvironment(
                environment_key="default",
                spec=compute.Environment(
                    environment_version="2",
                    dependencies=["/Workspace/Users/a/dist/orch_hello-1.0-py3-none-any.whl"],
                ),
            )
        ],
        tasks=[
            jobs.SubmitTask(
                task_key="wheel",
                environment_key="default",
                python_wheel_task=jobs.PythonWheelTask(
                    package_name="orch_hello", entry_point="main"
                ),
            )
        ],
    ).result()
    assert run.tasks and run.tasks[0].run_id is not None
    output = client.jobs.get_run_output(run.tasks[0].run_id)
    assert output.metadata.state.result_state == jobs.RunResultState.SUCCESS, output.error  # type: ignore[union-attr]
    assert "hello from the environment" in (output.logs or "")
