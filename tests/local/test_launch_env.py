"""A notebook kernel does not inherit the credentials of whoever started the local workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.local.runtime.execution import ExecutionRequest, NotebookSource
from orchestrator.local.runtime.launch import kernel_base_env, kernel_run_env


def test_credentials_in_the_environment_do_not_reach_the_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "DATABRICKS_TOKEN",
        "ARM_CLIENT_SECRET",
        "MY_SERVICE_PASSWORD",
        "GITHUB_TOKEN",
        "AZURE_STORAGE_CONNECTION_STRING",
        "ORCHESTRATOR_HOST",
    ):
        monkeypatch.setenv(name, "value-that-must-not-leak")
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    request = ExecutionRequest(
        notebook=NotebookSource("/nb", tmp_path / "nb", "PYTHON"),
        parameters={},
        workspace_root=tmp_path,
        dbfs_root=tmp_path,
        scratch_dir=tmp_path,
        state_db=tmp_path / "state.db",
    )
    env = kernel_base_env(tmp_path, tmp_path / "kernel") | kernel_run_env(
        request, control_dir=tmp_path / "c", pip_target=tmp_path / "p"
    )
    assert "value-that-must-not-leak" not in env.values()
    assert env["HARMLESS_SETTING"] == "kept"
    assert env["ORCH_NOTEBOOK_PATH"] == "/nb"


def test_each_kernel_has_its_own_home_and_tmpdir_and_shares_the_user_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "real-home"))
    for name in ("PIP_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONUSERBASE", "R_LIBS_USER"):
        monkeypatch.delenv(name, raising=False)
    env = kernel_base_env(tmp_path, tmp_path / "kernel")
    assert env["HOME"] == str(tmp_path / "kernel" / "home")
    assert env["TMPDIR"] == str(tmp_path / "kernel" / "tmp")
    assert (tmp_path / "kernel" / "home").is_dir() and (tmp_path / "kernel" / "tmp").is_dir()
    assert env["PIP_CACHE_DIR"] == str(tmp_path / "real-home" / ".cache" / "pip")
    assert env["PYTHONUSERBASE"] == str(tmp_path / "real-home" / ".local")
    assert env["R_LIBS_USER"] == str(tmp_path / "real-home" / "R" / "%p-library" / "%v")
    monkeypatch.setenv("PIP_CACHE_DIR", "/elsewhere/pip")
    assert kernel_base_env(tmp_path, tmp_path / "k2")["PIP_CACHE_DIR"] == "/elsewhere/pip"


def test_a_stray_pip_goes_to_the_runs_prefix_and_source_builds_keep_working(
    tmp_path: Path,
) -> None:
    """No ``PIP_TARGET`` (it breaks pip's isolated build environments); ``PIP_PREFIX`` is a
    prefix whose site-packages is the run's ``%pip`` folder."""
    import json
    import sys
    import sysconfig

    request = ExecutionRequest(
        notebook=NotebookSource("/nb", tmp_path / "nb", "PYTHON"),
        parameters={},
        workspace_root=tmp_path,
        dbfs_root=tmp_path,
        scratch_dir=tmp_path,
        state_db=tmp_path / "state.db",
    )
    target = tmp_path / "scratch" / "site-packages"
    target.mkdir(parents=True)
    env = kernel_run_env(request, control_dir=tmp_path / "c", pip_target=target)
    assert "PIP_TARGET" not in env
    prefix = Path(env["PIP_PREFIX"])
    assert prefix == tmp_path / "scratch" / "python-env"
    assert env["PIP_IGNORE_INSTALLED"] == "1"
    scheme = sysconfig.get_preferred_scheme("prefix")
    purelib = sysconfig.get_path("purelib", scheme, vars={"base": prefix, "platbase": prefix})
    assert Path(purelib).resolve() == target.resolve()
    assert env["PATH"].split(":")[:2] == [str(target / "bin"), str(prefix / "bin")]
    assert env["ORCH_PIP_TARGET"] == str(target)
    command = json.loads(env["ORCH_PIP_COMMAND"])
    assert command[:2] == [sys.executable, "-I"] and "runtime.pip_main" in command[-1]
