"""`orchestrator init` and what makes any repo work without sample assumptions: no overwrite
without --force, pipelines, empty paths refused, what deploy leaves out, an empty deploy and
an undeclared job parameter found by `plan` (exit 2), and every task's outcome as a case."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator.build.deploy_plan import (
    MAX_IMPORT_BYTES,
    DeployRules,
    encoded_size,
    kernel_languages,
    plan_deploy,
    uses_spark,
)
from orchestrator.build.parameters import declare_parameters
from orchestrator.cli import main
from orchestrator.errors import UsageError
from orchestrator.results.junit import SyntheticFailure, SyntheticPass, SyntheticSkip
from orchestrator.results.outcomes import (
    FailurePoint,
    TaskOutcome,
    failing_tests,
    outcome_case,
)

REPO = Path(__file__).resolve().parents[1]

RUNNER = "# Databricks notebook source\nimport pytest\nassert pytest.main(['.']) == 0\n"


def repo(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "run_tests.py").write_text(RUNNER)
    (root / "notebooks" / "eda.py").write_text("# Databricks notebook source\nprint(1)\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    (root / "data").mkdir()
    return root


def test_init_writes_config_and_one_task_per_runner_and_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo(tmp_path / "r")
    monkeypatch.chdir(root)
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    assert "test runner notebooks (1): notebooks/run_tests.py" in out
    assert "pytest folders: tests" in out and "data folders: data" in out
    template = json.loads((root / "job-template.json").read_text())
    assert [t["notebook_task"] for t in template["tasks"]] == [
        {"notebook_path": "notebooks/run_tests", "source": "WORKSPACE"}
    ]
    config = (root / "orchestrator.yml").read_text()
    assert "    # test_data: data" in config and "  # dev:" in config
    assert ".orchestrator/" in (root / ".gitignore").read_text()

    before = (root / "orchestrator.yml").read_text()
    assert main(["init", "--all-notebooks"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (root / "orchestrator.yml").read_text() == before
    assert main(["init", "--all-notebooks", "--force"]) == 0
    template = json.loads((root / "job-template.json").read_text())
    assert [t["task_key"] for t in template["tasks"]] == ["eda", "run_tests"]


def test_init_without_runners_says_all_notebooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "nb.py").write_text("# Databricks notebook source\nprint(1)\n")
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 2
    assert "--all-notebooks" in capsys.readouterr().err
    assert not (tmp_path / "orchestrator.yml").exists()


@pytest.mark.parametrize(
    ("pipeline", "ci"),
    [("github", ".github/workflows/notebooks-ci.yml"), ("azure", "devops/azure-pipelines-ci.yml")],
)
def test_init_writes_adapted_pipelines(
    pipeline: str, ci: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = repo(tmp_path / "r")
    monkeypatch.chdir(root)
    assert main(["init", "--pipelines", pipeline]) == 0
    text = (root / ci).read_text()
    assert "orchestrator build" in text
    assert "databricks/**" not in text and "'.[azure]'" not in text


def test_a_wheel_carries_the_pipeline_templates(tmp_path: Path) -> None:
    """An installed package (no checkout beside it) scaffolds pipelines too."""
    source = tmp_path / "src"
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, source / name if source.exists() else _mkdir(source) / name)
    for folder in ("orchestrator", "devops"):
        shutil.copytree(
            REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("orchestrator-*.whl")
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(installed)
    for template in ("azure-pipelines-ci.yml", "github/ci.yml", "github/cleanup.yml"):
        assert f"orchestrator/scaffold/pipeline_templates/{template}" in names
    files = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from orchestrator.scaffold.pipelines import pipeline_files, _templates;"
            "print(json.dumps([str(_templates()), sorted(pipeline_files('github'))]))",
        ],
        env={**os.environ, "PYTHONPATH": str(installed)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    folder, written = json.loads(files.stdout)
    assert folder == str(installed / "orchestrator" / "scaffold" / "pipeline_templates")
    assert written == [
        ".github/workflows/notebooks-ci.yml",
        ".github/workflows/notebooks-cleanup.yml",
    ]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_empty_paths_are_errors_not_the_repo_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo(tmp_path / "r")
    monkeypatch.chdir(root)
    assert main(["init"]) == 0
    for field in ("test_data", "models", "notebooks"):
        assert main(["plan", "--repo-name", "r", "--set", f"paths.{field}="]) == 2
        assert "must not be empty" in capsys.readouterr().err


def test_deploy_honours_gitignore_patterns_and_never_sends_outputs(tmp_path: Path) -> None:
    root = repo(tmp_path / "r")
    (root / ".gitignore").write_text("*.so\nscratch/\n!keep.so\n")
    (root / "notebooks" / "big.so").write_bytes(b"x" * 100)
    (root / "keep.so").write_bytes(b"x")
    (root / "scratch").mkdir()
    (root / "scratch" / "a.txt").write_text("a")
    for output in (".orchestrator/storage", "test-results", "artifacts"):
        (root / output).mkdir(parents=True)
        (root / output / "f.txt").write_text("x")
    (root / "docs").mkdir()
    (root / "docs" / "a.md").write_text("a")
    rules = DeployRules(
        exclude=("docs/",),
        gitignore_root=root,
        never=(root / "test-results", root / "artifacts"),
    )
    _, items = plan_deploy(root, "/b/1", rules=rules)
    sent = sorted(i.target for i in items)
    assert sent == [
        "/b/1/.gitignore",
        "/b/1/keep.so",
        "/b/1/notebooks/eda",
        "/b/1/notebooks/run_tests",
        "/b/1/tests/test_x.py",
    ]
    with pytest.raises(UsageError, match="nothing to deploy"):
        plan_deploy(root, "/b/1", rules=DeployRules(include=("*.nothing",)))


def test_the_import_limit_is_measured_in_base64(tmp_path: Path) -> None:
    """10 MB of base64 is 7.5 MB of file: a 9 MB file is refused at plan (exit 2), naming it,
    instead of failing every deploy."""
    assert encoded_size(3) == 4 and encoded_size(4) == 8 and encoded_size(0) == 0
    (tmp_path / "a.py").write_text("# Databricks notebook source\nprint(1)\n")
    with (tmp_path / "big.bin").open("wb") as f:
        f.truncate(9 * 1024 * 1024)  # sparse: only its size is read at plan
    with pytest.raises(UsageError) as raised:
        plan_deploy(tmp_path, "/b/1", rules=DeployRules())
    (line,) = str(raised.value).splitlines()
    assert f"{tmp_path / 'big.bin'}: 9437184 bytes is 12582912 in base64" in line
    (tmp_path / "big.bin").unlink()
    with (tmp_path / "fits.bin").open("wb") as f:
        f.truncate(MAX_IMPORT_BYTES // 4 * 3)  # exactly the limit once encoded
    _, items = plan_deploy(tmp_path, "/b/1", rules=DeployRules())
    assert [i.target for i in items] == ["/b/1/a", "/b/1/fits.bin"]


def test_the_kernel_languages_are_the_deployed_notebooks(tmp_path: Path) -> None:
    """What an embedded workspace's kernel pool starts kernels of: the notebooks' languages (a
    .r file without the header is not one); Python when there is none."""
    (tmp_path / "a.py").write_text("# Databricks notebook source\nprint(1)\n")
    (tmp_path / "plain.r").write_text("x <- 1\n")
    _, items = plan_deploy(tmp_path, "/b/1", rules=DeployRules())
    assert kernel_languages(items) == {"PYTHON"}
    (tmp_path / "t.r").write_text("# Databricks notebook source\nx <- 1\n")
    (tmp_path / "q.sql").write_text("-- Databricks notebook source\nSELECT 1\n")
    _, items = plan_deploy(tmp_path, "/b/1", rules=DeployRules())
    assert kernel_languages(items) == {"PYTHON", "R", "SQL"}
    (tmp_path / "a.py").unlink()
    _, items = plan_deploy(tmp_path, "/b/1", rules=DeployRules())
    assert kernel_languages(items) == {"R", "SQL"}
    assert kernel_languages([]) == {"PYTHON"}


def test_a_build_uses_spark_when_a_notebook_its_tasks_run_names_it(tmp_path: Path) -> None:
    """The embedded workspace starts its Spark zygote for such a build: a task's notebook that
    names spark. A deployed notebook no task runs, a file or an R notebook does not count (R
    notebooks get no Spark)."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "run.py").write_text("# Databricks notebook source\nprint(1)\n")
    (tmp_path / "s.r").write_text("# Databricks notebook source\nlibrary(SparkR)\n")
    (tmp_path / "helper.py").write_text("import pyspark\n")
    (tmp_path / "f.py").write_text("# Databricks notebook source\ndf = spark.range(3)\n")
    _, items = plan_deploy(tmp_path, "/b/1", rules=DeployRules())

    def task(path: str) -> dict[str, object]:
        return {"notebook_task": {"notebook_path": path}}

    runs = [task("/b/1/t/run"), task("/b/1/s"), task("/b/1/helper")]
    assert uses_spark(items, runs) is False
    assert uses_spark(items, [*runs, task("/b/1/f")]) is True
    assert uses_spark(items, [task("/b/1/./f")]) is True


def test_build_parameters_are_declared_and_unknown_references_are_exit_2() -> None:
    settings = {"tasks": [{"task_key": "t"}], "parameters": [{"name": "x", "default": "1"}]}
    declared = declare_parameters(settings, {"build_id": "b", "x": "2"}, source="t.json")
    assert declared["parameters"] == [
        {"name": "x", "default": "1"},
        {"name": "build_id", "default": ""},
    ]
    bad = {"tasks": [{"task_key": "t", "p": "{{job.parameters.nope}}"}]}
    with pytest.raises(UsageError, match="nope"):
        declare_parameters(bad, {"build_id": "b"}, source="t.json")


def test_a_template_without_parameters_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo(tmp_path / "r")
    monkeypatch.chdir(root)
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(["plan", "--repo-name", "r", "--build-id", "b1"]) == 0
    plan = json.loads(capsys.readouterr().out)
    (task,) = plan["job"]["tasks"]
    assert (
        task["notebook_task"]["notebook_path"] == "~/orchestrator-builds/r/b1/notebooks/run_tests"
    )
    assert task["notebook_task"]["base_parameters"]["build_id"] == "b1"
    assert main(["plan", "--repo-name", "r", "--set", "junit.required_tasks=nope"]) == 2


def outcome(**kwargs: object) -> TaskOutcome:
    base: dict[str, object] = {
        "task_key": "t",
        "result": "SUCCESS",
        "seconds": 2.5,
        "run_url": "http://run/1",
        "has_junit": False,
    }
    return TaskOutcome(**{**base, **kwargs})  # type: ignore[arg-type]


def test_every_task_outcome_is_a_case() -> None:
    passed = outcome_case(outcome(), junit_required=False)
    assert isinstance(passed, SyntheticPass) and passed.time == 2.5
    assert "http://run/1" in passed.details
    strict = outcome_case(outcome(), junit_required=True)
    assert isinstance(strict, SyntheticFailure) and "JUnit required" in strict.message
    assert outcome_case(outcome(has_junit=True), junit_required=True) is None
    assert (
        outcome_case(
            outcome(has_junit=True, result="FAILED", junit_failed=True), junit_required=False
        )
        is None
    )
    after = outcome_case(
        outcome(has_junit=True, result="FAILED", error="boom"), junit_required=False
    )
    assert isinstance(after, SyntheticFailure) and "after writing" in after.name
    output = "collected 2 items\nFAILED tests/test_a.py::test_b - assert 1 == 2\n"
    point = FailurePoint(
        notebook="tests/run_pytest",
        cell=2,
        cell_source="pytest.main([...])",
        error="AssertionError: pytest failed",
        trace="AssertionError: pytest failed",
    )
    failed = outcome_case(
        outcome(result="FAILED", error="task error", failure=point, output=output),
        junit_required=False,
    )
    assert isinstance(failed, SyntheticFailure)
    assert failed.message == "failing: tests/test_a.py::test_b (tests/run_pytest, cell 2)"
    assert "Failed in tests/run_pytest, cell 2" in failed.details
    assert "collected 2 items" in failed.details
    skipped = outcome_case(
        outcome(result="UPSTREAM_FAILED", upstream="upstream task a failed"),
        junit_required=True,
    )
    assert isinstance(skipped, SyntheticSkip)
    assert skipped.message == "not run: upstream task a failed"


def test_failing_tests_and_output_are_read_from_pytest_testthat_and_exports() -> None:
    text = (
        "FAILED tests/test_a.py::test_b - boom\nERROR tests/test_c.py::test_d\n"
        "\u2500\u2500 Failure ('test-stats.R:5:3'): doubling works \u2500\u2500\n"
    )
    assert failing_tests(text) == [
        "tests/test_a.py::test_b",
        "tests/test_c.py::test_d",
        "doubling works",
    ]


def test_init_proposes_a_git_mode_when_notebooks_import_from_the_repo_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "r"
    (root / "covid_analysis").mkdir(parents=True)
    (root / "covid_analysis" / "__init__.py").write_text("")
    (root / "covid_analysis" / "transforms.py").write_text("def clean(x):\n    return x\n")
    (root / "notebooks").mkdir()
    (root / "notebooks" / "run_tests.py").write_text(
        "# Databricks notebook source\nfrom covid_analysis.transforms import *\n"
        "import pytest\npytest.main(['.'])\n"
    )
    assert main(["init", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "imported from the repo root: covid_analysis" in out
    config = (root / "orchestrator.yml").read_text()
    assert "    # mode: git-folder" in config and "import covid_analysis" in config
    plain = tmp_path / "plain"
    (plain / "notebooks").mkdir(parents=True)
    (plain / "notebooks" / "a.py").write_text("# Databricks notebook source\nprint(1)\n")
    assert main(["init", "--root", str(plain), "--all-notebooks"]) == 0
    assert "# mode: git-folder" not in (plain / "orchestrator.yml").read_text()


def test_init_proposes_seeding_dbfs_files_the_notebooks_read_from_the_repo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "r"
    (root / "infra" / "files").mkdir(parents=True)
    (root / "infra" / "files" / "covid.csv").write_text("a\n1\n")
    (root / "notebooks").mkdir()
    (root / "notebooks" / "load.py").write_text(
        '# Databricks notebook source\ndf = spark.read.csv("dbfs:/src/covid.csv")\n'
    )
    assert main(["init", "--root", str(root), "--all-notebooks"]) == 0
    config = (root / "orchestrator.yml").read_text()
    assert "  #     /src: infra/files" in config
    # uncommented, it is a valid config
    text = config.replace("  # local:", "  local:").replace("  #   dbfs:", "    dbfs:")
    (root / "orchestrator.yml").write_text(text.replace("  #     /src:", "      /src:"))
    capsys.readouterr()
    assert main(["plan", "--config", str(root / "orchestrator.yml"), "--repo-name", "r"]) == 0
    assert json.loads(capsys.readouterr().out)["local_dbfs"] == {"/src": "infra/files"}


def test_init_proposes_seeding_a_volume_the_notebooks_read(tmp_path: Path) -> None:
    root = tmp_path / "v"
    (root / "data").mkdir(parents=True)
    (root / "data" / "orders.csv").write_text("qty\n1\n")
    (root / "notebooks").mkdir()
    (root / "notebooks" / "load.r").write_text(
        "# Databricks notebook source\n"
        'orders <- read.csv("/Volumes/main/default/landing/orders.csv")\n'
    )
    assert main(["init", "--root", str(root), "--all-notebooks"]) == 0
    assert "  #     /Volumes/main/default/landing: data" in (root / "orchestrator.yml").read_text()
