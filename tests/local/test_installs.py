"""The installer's pure parts: ``%pip install`` arguments read for uv, the environment cache
(keys, hard-linked copies, its bound), environment dependencies and the checks of
``environments`` at job create."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.local.jobs.compute_refs import check_environments
from orchestrator.local.runtime.cell_commands import RunCode, Unsupported, plan_cell
from orchestrator.local.runtime.env_cache import (
    DEFAULT_MAX_BYTES,
    EnvCache,
    configured_max_bytes,
    link_tree,
    resolution_key,
)
from orchestrator.local.runtime.installs import parse_pip_args
from orchestrator.local.runtime.libraries import (
    environment_dependencies,
    library_path_mapper,
    plan_libraries,
)
from orchestrator.local.state.api_error import ApiError
from orchestrator.local.state.notebook_format import Cell


def test_pip_arguments_are_read_for_uv(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "a-1-py3-none-any.whl").write_text("")
    parsed = parse_pip_args(
        [
            "-q",
            "-r",
            "requirements.txt",
            "--index-url=https://example.invalid/simple",
            "-U",
            "pandas>=2",
            "dist/a-1-py3-none-any.whl",
            "--upgrade-strategy",
            "eager",
        ],
        tmp_path,
    )
    assert not isinstance(parsed, str)
    assert parsed.requirements == [
        f"-r {tmp_path / 'requirements.txt'}",
        "pandas>=2",
        str(tmp_path / "dist" / "a-1-py3-none-any.whl"),
    ]
    assert parsed.options == ["--index-url", "https://example.invalid/simple"]
    assert parsed.install_only == ["--upgrade"]
    assert parsed.cacheable
    editable = parse_pip_args(["-e", "."], tmp_path)
    assert not isinstance(editable, str) and not editable.cacheable


def test_pip_options_uv_does_not_take_the_same_way_go_to_pip(tmp_path: Path) -> None:
    assert parse_pip_args(["--user", "x"], tmp_path) == "uv does not take pip's --user the same way"
    assert parse_pip_args(["-r"], tmp_path) == "-r needs a value"


def test_the_cache_reuses_by_key_and_drops_the_least_recently_used(tmp_path: Path) -> None:
    cache = EnvCache(tmp_path)
    keys = [resolution_key({"pinned": [f"pkg=={n}"]}) for n in range(3)]
    assert len(set(keys)) == 3
    assert resolution_key({"b": 1, "a": 2}) == resolution_key({"a": 2, "b": 1})

    def build(key: str) -> None:
        built = cache.building(key)
        (built / "pkg").mkdir()
        (built / "pkg" / "__init__.py").write_bytes(b"x" * 10_000)
        assert cache.lookup(key) is None
        cache.store(key, built)

    build(keys[0])
    one = cache.entries()[0][2]
    cache.max_bytes = 2 * one  # room for two environments
    build(keys[1])
    time.sleep(0.01)
    assert cache.lookup(keys[0]) is not None  # used again: keys[1] is now the oldest use
    build(keys[2])
    assert [cache.lookup(key) is not None for key in keys] == [True, False, True]
    cache.max_bytes = 0  # the one just stored stays even alone over the bound
    assert cache.enforce_bound(keep=keys[2]) == [keys[0]]
    assert [key for _used, key, _size in cache.entries()] == [keys[2]]


def test_a_cached_environment_is_copied_as_links_in_new_folders(tmp_path: Path) -> None:
    source = tmp_path / "cached"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "mod.py").write_text("x = 1\n")
    (source / "pkg" / "alias.py").symlink_to("mod.py")
    (source / ".orch-complete").write_text("k")
    target = tmp_path / "run" / "site-packages"
    target.mkdir(parents=True)
    assert link_tree(source, target) == 2
    assert (target / "pkg" / "mod.py").samefile(source / "pkg" / "mod.py")
    assert (target / "pkg" / "alias.py").is_symlink()
    assert not (target / ".orch-complete").exists()
    assert not (target / "pkg").samefile(source / "pkg")


def test_the_cache_bound_is_configured_in_megabytes() -> None:
    assert configured_max_bytes({}) == DEFAULT_MAX_BYTES
    assert configured_max_bytes({"ORCHESTRATOR_LOCAL_ENV_CACHE_MB": "10"}) == 10 * 1024**2
    assert configured_max_bytes({"ORCHESTRATOR_LOCAL_ENV_CACHE_MB": "lots"}) == DEFAULT_MAX_BYTES


def test_pip_cells_of_python_notebooks_run_as_code_where_the_magic_is_managed() -> None:
    cell = Cell("code", "%pip install a \\\n  b\nimport a")
    assert plan_cell(cell, "PYTHON") == RunCode(cell.source)
    assert plan_cell(Cell("code", "%pip list"), "PYTHON") == Unsupported(
        "only %pip install is supported by the local workspace"
    )
    refused = plan_cell(Cell("code", "%pip install x"), "R")
    assert isinstance(refused, Unsupported)
    assert "manage Python packages from a %python cell" in refused.message


def test_environment_dependencies_are_requirement_lines_with_workspace_paths(
    tmp_path: Path,
) -> None:
    environments = [
        {"environment_key": "other", "spec": {"dependencies": ["nope"]}},
        {
            "environment_key": "default",
            "spec": {
                "environment_version": "2",
                "dependencies": ["pandas==2.2.3", "-r /Workspace/Users/a/requirements.txt"],
            },
        },
    ]
    dependencies = environment_dependencies(environments, "default")
    assert dependencies == ("pandas==2.2.3", "-r /Workspace/Users/a/requirements.txt")
    assert environment_dependencies(environments, None) == ()
    local = library_path_mapper(dbfs_root=tmp_path / "dbfs", workspace_root=tmp_path / "ws")
    plan = plan_libraries([], local_path=local, dependencies=dependencies)
    assert plan.pip_args == (
        "pandas==2.2.3",
        "-r",
        str(tmp_path / "ws" / "Users" / "a" / "requirements.txt"),
    )


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (
            {"environments": [{"environment_key": "default", "spec": {}}]},
            "names environment nope, which is not one of the job's environments",
        ),
        ({"environments": [{"spec": {}}]}, "each needs an environment_key"),
        (
            {"environments": [{"environment_key": "e"}, {"environment_key": "e"}]},
            "environment_key e is not unique",
        ),
        (
            {"environments": [{"environment_key": "nope", "spec": {"dependencies": "pandas"}}]},
            "dependencies must be a list of strings",
        ),
    ],
)
def test_environments_are_checked_at_create(settings: dict[str, object], error: str) -> None:
    tasks = [{"task_key": "t", "environment_key": "nope"}]
    with pytest.raises(ApiError) as raised:
        check_environments(settings, tasks)
    assert error in str(raised.value)
    check_environments({"environments": [{"environment_key": "nope"}]}, tasks)


@pytest.mark.parametrize("why", ["chosen", "uv missing"])
def test_pip_installs_when_chosen_or_when_uv_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    import os
    import subprocess
    import sys

    from orchestrator.local.runtime import installs
    from tests.local.runtime_helpers import tiny_wheel

    if why == "uv missing":
        # a machine without uv cannot be made here otherwise: uv is in this environment
        monkeypatch.setattr(installs, "uv_binary", lambda: None)
    wheel = tiny_wheel(tmp_path)
    said: list[str] = []

    def run(command: list[str], env: dict[str, str]) -> tuple[int, str]:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout + done.stderr

    context = installs.InstallContext(
        target=tmp_path / "site-packages",
        python=sys.executable,
        state_dir=tmp_path / "state",
        cwd=tmp_path,
        work_dir=tmp_path / "work",
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
        use_uv=why != "chosen",
    )
    installs.install(["--no-index", str(wheel)], context, run=run, say=said.append)
    assert (tmp_path / "site-packages" / "orch_tiny_pkg" / "__init__.py").is_file()
    assert not (tmp_path / "state").exists()  # no environment cache without uv
    if why == "uv missing":
        assert said == [
            "uv is not installed (it comes with orchestrator[local]): installing with pip\n"
        ]
    else:
        assert said == []
