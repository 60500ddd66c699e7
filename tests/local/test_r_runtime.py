"""R notebooks with a Databricks Runtime's R packages: the tidyverse, install.packages(),
sparklyr and library() of a missing package, in real R kernels (no server)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.local.runtime_helpers import Workspace, source
from tests.tools import require_r_packages

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(autouse=True)
def _r_with_the_runtime_packages() -> None:
    require_r_packages()  # skipped on a machine without them, failed in CI (.ci/setup)


def run_r(runtime: Workspace, *cells: str, **kwargs: object):  # type: ignore[no-untyped-def]
    runtime.add("/Users/a/r", source(*cells, language="R"), language="R")
    return runtime.run("/Users/a/r", **kwargs)  # type: ignore[arg-type]


def tiny_package(folder: Path, name: str, code: str, exports: tuple[str, ...]) -> Path:
    """The source folder of an R package ``name`` with ``code`` in it."""
    package = folder / name
    (package / "R").mkdir(parents=True)
    (package / "DESCRIPTION").write_text(
        f"Package: {name}\nVersion: 9.9.9\nTitle: Test\nDescription: Test.\n"
        "License: MIT\nAuthor: t\nMaintainer: t <t@example.com>\n"
    )
    (package / "NAMESPACE").write_text("".join(f"export({e})\n" for e in exports))
    (package / "R" / "code.R").write_text(code)
    return package


def test_a_testthat_notebook_on_dplyr_purrr_stringr_and_readr_passes(runtime: Workspace) -> None:
    result = run_r(
        runtime,
        "library(dplyr)\nlibrary(purrr)\nlibrary(stringr)\nlibrary(readr)\nlibrary(testthat)",
        'csv <- file.path(tempdir(), "people.csv")\n'
        'write_csv(tibble::tibble(name = c("ada", "bob", "cy"), age = c(36, 41, 29)), csv)\n'
        "people <- read_csv(csv, show_col_types = FALSE)",
        'test_that("the tidyverse works as on a runtime", {\n'
        "  older <- people %>% filter(age > 30) %>% arrange(desc(age))\n"
        '  expect_equal(older$name, c("bob", "ada"))\n'
        '  expect_equal(map_chr(older$name, str_to_upper), c("BOB", "ADA"))\n'
        "  expect_equal(sum(map_dbl(people$age, ~ .x + 1)), 109)\n"
        '  expect_true(all(str_detect(people$name, "^[a-z]+$")))\n'
        "})",
        'dbutils.notebook.exit("green")',
    )
    assert result.status == "SUCCESS", result.error
    assert result.exit_value == "green"


def test_install_packages_of_an_installed_package_says_it_does_nothing(
    runtime: Workspace,
) -> None:
    result = run_r(
        runtime,
        'install.packages(c("dplyr", "testthat"))',
        'utils::install.packages("jsonlite")\nlibrary(dplyr)',
        'stopifnot(!"install.packages" %in% ls(globalenv()))',
    )
    assert result.status == "SUCCESS", result.error
    assert "install.packages(): dplyr 1." in result.logs
    assert "is already installed; nothing to do" in result.logs
    assert "install.packages(): jsonlite" in result.logs


def test_install_packages_of_a_missing_package_names_it_and_its_debian_package(
    runtime: Workspace,
) -> None:
    apt_cache = subprocess.run(
        ["apt-cache", "policy", "r-cran-janeaustenr"], capture_output=True, text=True
    )
    if "Candidate:" not in apt_cache.stdout:
        pytest.skip("this machine's apt cache has no r-cran-janeaustenr to name")
    # a CRAN package with a Debian package that nothing here depends on
    have = subprocess.run(
        ["Rscript", "-e", "quit(status = !requireNamespace('janeaustenr', quietly = TRUE))"],
        capture_output=True,
    )
    if have.returncode == 0:
        pytest.skip("janeaustenr is installed on this machine")
    result = run_r(runtime, "x <- 1", 'install.packages("janeaustenr")', "print('not reached')")
    assert result.status == "FAILED"
    assert result.failed_cell == 2
    error = result.error or ""
    assert "package 'janeaustenr' is not available" in error
    assert "Debian's r-cran-janeaustenr (" in error
    assert "apt-get install r-cran-janeaustenr" in error


def test_a_package_no_debian_package_provides_says_so(runtime: Workspace) -> None:
    result = run_r(runtime, 'install.packages("surelyNoSuchPackageX")')
    assert result.status == "FAILED"
    assert "package 'surelyNoSuchPackageX' is not available: no Debian package provides it" in (
        result.error or ""
    )


def test_library_of_a_missing_package_names_its_debian_package(runtime: Workspace) -> None:
    result = run_r(runtime, "library(surelyNoSuchPackageX)")
    assert result.status == "FAILED"
    error = result.error or ""
    assert "there is no package called" in error
    assert "no Debian package provides it (r-cran-surelynosuchpackagex" in error


def test_sparklyr_loads_and_tests_that_skip_without_a_connection_run(runtime: Workspace) -> None:
    result = run_r(
        runtime,
        "library(sparklyr)\nlibrary(testthat)",
        "sc <- tryCatch(spark_connect(method = 'databricks'), error = function(e) {\n"
        "  message('no connection: ', conditionMessage(e)); NULL })\n"
        "if (is.null(sc)) rm(sc)",
        'test_that("needs Spark", { skip_if(!exists("sc")); stop("not skipped") })\n'
        'test_that("runs without Spark", { expect_equal(1 + 1, 2) })',
        "stopifnot(isTRUE(require(sparklyr)))",
        'stopifnot(!requireNamespace("sparklyr", quietly = TRUE) ||'
        ' nzchar(system.file(package = "sparklyr")))',
    )
    assert result.status == "SUCCESS", result.error
    assert "spark_connect(): the local workspace has no Spark for R notebooks" in result.logs


def test_spark_connect_of_the_real_sparklyr_says_r_has_no_local_spark(
    runtime: Workspace, tmp_path: Path
) -> None:
    """Where this machine's R has sparklyr (here: a tiny package of that name, since Debian has
    none), the real one loads and only its spark_connect() is replaced."""
    package = tiny_package(
        tmp_path,
        "sparklyr",
        'spark_connect <- function(...) "connected"\nspark_version_here <- function() "real"\n',
        ("spark_connect", "spark_version_here"),
    )
    library = tmp_path / "rlib"
    library.mkdir()
    subprocess.run(
        ["R", "CMD", "INSTALL", "--no-test-load", "-l", str(library), str(package)],
        check=True,
        capture_output=True,
    )
    result = run_r(
        runtime,
        f'.libPaths(c("{library}", .libPaths()))\nlibrary(sparklyr)',
        'stopifnot(spark_version_here() == "real")',
        "spark_connect(method = 'databricks')",
    )
    assert result.status == "FAILED"
    assert result.failed_cell == 3
    assert "spark_connect(): the local workspace has no Spark for R notebooks" in (
        result.error or ""
    )


def test_sparkr_is_still_refused_with_one_line(runtime: Workspace) -> None:
    result = run_r(runtime, "library(SparkR)")
    assert result.status == "FAILED"
    assert "SparkR is not available: the local workspace has no Spark for R" in (result.error or "")


def test_install_packages_of_a_local_package_file_is_notebook_scoped(
    runtime: Workspace, tmp_path: Path
) -> None:
    package = tiny_package(tmp_path, "orchtiny", 'hello <- function() "hi"\n', ("hello",))
    result = run_r(
        runtime,
        f'install.packages("{package}", repos = NULL, type = "source")',
        'library(orchtiny)\nstopifnot(hello() == "hi")\n'
        'stopifnot(startsWith(find.package("orchtiny"), normalizePath(tempdir())))',
    )
    assert result.status == "SUCCESS", result.error


def test_python_and_r_notebooks_write_and_read_a_volume(runtime: Workspace) -> None:
    volume = runtime.dbfs_root / "Volumes" / "main" / "default" / "landing"
    volume.mkdir(parents=True)  # as a volume exists once created (CREATE VOLUME, Terraform)
    runtime.add(
        "/Users/a/py",
        source(
            "import pandas as pd\n"
            "pd.DataFrame({'n': [1, 2, 3]}).to_csv('/Volumes/main/default/landing/py.csv', "
            "index=False)",
            "dbutils.fs.mkdirs('/Volumes/main/default/landing/from_py')\n"
            "with open('/Volumes/main/default/landing/from_py/note.txt', 'w') as f:\n"
            "    f.write('written by python')",
            "assert pd.read_csv('/Volumes/main/default/landing/py.csv')['n'].sum() == 6\n"
            "names = [f.name for f in dbutils.fs.ls('dbfs:/Volumes/main/default/landing/')]\n"
            "assert 'py.csv' in names, names",
        ),
    )
    assert (python := runtime.run("/Users/a/py")).status == "SUCCESS", python.error
    result = run_r(
        runtime,
        'v <- "/Volumes/main/default/landing"\n'
        'stopifnot(sum(readr::read_csv(file.path(v, "py.csv"), show_col_types = FALSE)$n) == 6)'
        '\nstopifnot(readLines(file.path(v, "from_py", "note.txt")) == "written by python")',
        'dir.create(file.path(v, "from_r"))\n'
        'write.csv(data.frame(n = 4:5), file.path(v, "from_r", "r.csv"), row.names = FALSE)\n'
        'stopifnot(sum(read.csv(file.path(v, "from_r", "r.csv"))$n) == 9)\n'
        'stopifnot(identical(sort(list.files(v)), c("from_py", "from_r", "py.csv")))',
    )
    assert result.status == "SUCCESS", result.error
    assert (volume / "from_r" / "r.csv").read_text().splitlines() == ['"n"', "4", "5"]


def test_through_the_workspace_an_r_testthat_notebook_on_the_tidyverse_passes(client) -> None:  # type: ignore[no-untyped-def]
    from databricks.sdk.service import jobs
    from databricks.sdk.service.workspace import Language

    client.workspace.mkdirs("/Shared/r")
    client.workspace.upload(
        "/Shared/r/test_tidy",
        source(
            "library(testthat)\nlibrary(dplyr)\nlibrary(purrr)\nlibrary(stringr)\nlibrary(readr)",
            'test_that("summarise by group", {\n'
            '  df <- read_csv(I("g,x\\na,1\\na,2\\nb,5\\n"), show_col_types = FALSE)\n'
            "  out <- df %>% group_by(g) %>% summarise(total = sum(x), .groups = 'drop')\n"
            "  expect_equal(out$total, c(3, 5))\n"
            '  expect_equal(map_chr(out$g, ~ str_c(.x, "!")), c("a!", "b!"))\n'
            "})",
        ).encode(),
        language=Language.R,
        overwrite=True,
    )
    run = client.jobs.submit(
        run_name="r-tidy",
        tasks=[
            jobs.SubmitTask(
                task_key="r",
                notebook_task=jobs.NotebookTask(notebook_path="/Shared/r/test_tidy"),
            )
        ],
    ).result()
    assert run.state.result_state == jobs.RunResultState.SUCCESS, client.jobs.get_run_output(
        run.tasks[0].run_id
    ).error
