"""A task's libraries: installed for its run before the first cell, or a one-line error."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator.local.runtime.execution import NotebookResult
from orchestrator.local.runtime.executor import execute_notebook
from orchestrator.local.runtime.libraries import (
    LibraryError,
    library_path_mapper,
    plan_libraries,
)
from tests.local.runtime_helpers import Workspace, source, tiny_wheel
from tests.tools import require_r

pytestmark = pytest.mark.timeout(180)
USES_TINY = "import orch_tiny_pkg, sys\ndbutils.notebook.exit(orch_tiny_pkg.VALUE)"


def run_with(runtime: Workspace, libraries: list[Any], text: str = USES_TINY) -> NotebookResult:
    runtime.add("/Users/a/nb", source(text))
    request = dataclasses.replace(runtime.request("/Users/a/nb"), libraries=tuple(libraries))
    return execute_notebook(request, resolver=runtime.resolver, cancel=threading.Event())


@pytest.fixture
def wheel(runtime: Workspace) -> Path:
    libs = runtime.dbfs_root / "Volumes" / "main" / "libs" / "w"
    libs.mkdir(parents=True)
    return tiny_wheel(libs)


def test_a_whl_library_is_there_before_the_first_cell(runtime: Workspace, wheel: Path) -> None:
    result = run_with(runtime, [{"whl": "/Volumes/main/libs/w/" + wheel.name}])
    assert result.status == "SUCCESS", result.error
    assert result.exit_value == "tiny works"
    assert "Installing the task's libraries: whl /Volumes/main/libs/w/" in result.logs


@pytest.mark.slow
def test_requirements_and_pypi_from_a_repo(runtime: Workspace, wheel: Path) -> None:
    requirements = runtime.workspace_root / "Users" / "a" / "requirements.txt"
    requirements.parent.mkdir(parents=True, exist_ok=True)
    requirements.write_text(f"{wheel}\n")
    result = run_with(runtime, [{"requirements": "/Workspace/Users/a/requirements.txt"}])
    assert result.status == "SUCCESS", result.error
    index = runtime.root / "index" / "orch-tiny-pkg"
    index.mkdir(parents=True)
    shutil.copy(wheel, index)
    (index / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    repo = (runtime.root / "index").as_uri()
    result = run_with(runtime, [{"pypi": {"package": "orch-tiny-pkg==0.1", "repo": repo}}])
    assert result.status == "SUCCESS", result.error


def test_a_library_that_cannot_install_fails_the_run_with_the_installers_reason(
    runtime: Workspace,
) -> None:
    repo = (runtime.root / "empty-index").as_uri()
    (runtime.root / "empty-index").mkdir()
    result = run_with(runtime, [{"pypi": {"package": "orch-no-such-pkg", "repo": repo}}])
    assert result.status == "FAILED"
    error = result.error or ""
    # uv's explanation, in one line
    assert error.startswith(
        "cannot install the task's libraries (pypi orch-no-such-pkg): cannot resolve the "
        "requirements: Because orch-no-such-pkg was not found"
    ), error
    assert "\n" not in error
    assert result.failed_cell is None


@pytest.mark.slow
def test_cran_libraries_must_be_installed_for_the_machines_r(runtime: Workspace) -> None:
    require_r()
    ok = run_with(runtime, [{"cran": {"package": "testthat"}}], "dbutils.notebook.exit('ran')")
    assert ok.status == "SUCCESS", ok.error
    missing = run_with(
        runtime, [{"cran": {"package": "orchNoSuchPkg"}}, {"cran": {"package": "jsonlite"}}]
    )
    assert missing.status == "FAILED"
    assert (missing.error or "").startswith(
        "cran library orchNoSuchPkg is not installed for this machine's R"
    )


@pytest.mark.parametrize(
    ("libraries", "error"),
    [
        ([{"jar": "dbfs:/x.jar"}], 'jar library "dbfs:/x.jar" is not supported by the local'),
        (
            [{"maven": {"coordinates": "org.a:b:1"}}],
            'maven library {"coordinates": "org.a:b:1"} is not supported',
        ),
        ([{"egg": "dbfs:/x.egg"}], "egg libraries are no longer supported"),
        ([{"pypi": {}}], 'libraries: {"pypi": {}} has no pypi package'),
        ([{"whl": "dbfs:/none.whl"}], "whl library dbfs:/none.whl: no such file"),
        ([{"whl": "s3://b/x.whl"}], "library path s3://b/x.whl: expected dbfs:/"),
        ([{"cran": {"package": "x", "repo": "https://r"}}], "cran library x: a repo cannot"),
        ([{"pypi": {"package": "a"}, "whl": "x"}], "not one library of a known type"),
        ([{"wheel": "x"}], "not one library of a known type"),
        (["numpy"], 'libraries: not a library object: "numpy"'),
    ],
)
def test_libraries_that_cannot_be_installed_here_are_named(
    tmp_path: Path, libraries: list[Any], error: str
) -> None:
    local = library_path_mapper(dbfs_root=tmp_path, workspace_root=tmp_path)
    with pytest.raises(LibraryError) as raised:
        plan_libraries(libraries, local_path=local)
    assert error in str(raised.value)
    assert "\n" not in str(raised.value)


def test_library_paths_stay_in_their_roots(tmp_path: Path) -> None:
    local = library_path_mapper(dbfs_root=tmp_path / "dbfs", workspace_root=tmp_path / "runtime")
    assert local("dbfs:/a/../../../etc/x.whl") == tmp_path / "dbfs" / "etc" / "x.whl"
    assert local("/Workspace/Users/a/r.txt") == tmp_path / "runtime" / "Users" / "a" / "r.txt"
    assert (
        local("/Volumes/c/s/v/x.whl") == tmp_path / "dbfs" / "Volumes" / "c" / "s" / "v" / "x.whl"
    )
