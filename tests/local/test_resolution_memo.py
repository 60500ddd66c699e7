"""The resolution memo: a repeated ``%pip install`` within the window takes the pins resolved
before without asking the index, and anything that could resolve differently asks again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.local.runtime import installs
from orchestrator.local.runtime.resolution_memo import (
    DEFAULT_TTL,
    TTL_VARIABLE,
    ResolutionMemo,
    configured_ttl,
    memo_key,
)

PY = sys.executable


def _key(requirements: list[str], options: list[str] | None = None, **kw: object) -> str | None:
    return memo_key(
        requirements,
        options or [],
        list(kw.get("install_only", [])),  # type: ignore[call-overload]
        python=PY,
        index_env=dict(kw.get("index_env", {})),  # type: ignore[call-overload]
    )


def test_the_window_is_pypis_ten_minutes_unless_configured() -> None:
    assert configured_ttl({}) == DEFAULT_TTL == 600
    assert configured_ttl({TTL_VARIABLE: "30"}) == 30
    assert configured_ttl({TTL_VARIABLE: "0"}) == 0
    assert configured_ttl({TTL_VARIABLE: "soon"}) == DEFAULT_TTL


def test_the_key_follows_everything_that_decides_the_resolution(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pandas\nnumpy>=1.26  # comment\n\npytest\n")
    first = _key([f"-r {requirements}"])
    assert first is not None and first == _key([f"-r {requirements}"])
    requirements.write_text("pandas\nnumpy>=1.26\npytest==8.0\n")
    assert _key([f"-r {requirements}"]) not in (None, first)
    assert _key(["pandas"]) != _key(["pandas"], ["--index-url", "https://mirror.test/simple"])
    assert _key(["pandas"]) != _key(["pandas"], index_env={"UV_INDEX_URL": "https://m.test"})
    assert _key(["pandas"]) != _key(["pandas"], ["--prerelease=allow"])


@pytest.mark.parametrize(
    ("requirements", "options", "install_only"),
    [
        (["pandas"], [], ["--upgrade"]),  # asks for the newest now
        (["pandas"], [], ["--reinstall"]),
        (["./dist/pkg-1.0-py3-none-any.whl"], [], []),  # a file whose content may change
        (["pkg @ https://host.test/pkg.tar.gz"], [], []),
        (["git+https://host.test/pkg.git"], [], []),
        (["pandas"], ["--find-links", "/wheels"], []),  # a folder that may gain a release
    ],
)
def test_what_a_name_does_not_fix_is_never_remembered(
    requirements: list[str], options: list[str], install_only: list[str]
) -> None:
    assert _key(requirements, options, install_only=install_only) is None


@pytest.mark.parametrize("line", ["-r other.txt", "-c constraints.txt", "-e ./pkg", "./x.whl"])
def test_a_requirements_file_naming_more_files_is_never_remembered(
    tmp_path: Path, line: str
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"pandas\n{line}\n")
    assert _key([f"-r {requirements}"]) is None
    assert _key([f"-r {tmp_path / 'missing.txt'}"]) is None


def test_a_constraints_file_is_keyed_by_its_content(tmp_path: Path) -> None:
    constraints = tmp_path / "c.txt"
    constraints.write_text("numpy<2\n")
    first = _key(["pandas"], ["--constraint", str(constraints)])
    constraints.write_text("numpy<1.26\n")
    assert _key(["pandas"], ["--constraint", str(constraints)]) not in (None, first)


def test_a_resolution_is_recalled_within_the_window_only(tmp_path: Path) -> None:
    now = [1000.0]
    memo = ResolutionMemo(tmp_path, ttl=600, clock=lambda: now[0])
    assert memo.recall("k") is None
    memo.remember("k", ["numpy==1.26.4", "pandas==2.2.3"])
    now[0] += 599
    assert memo.recall("k") == ["numpy==1.26.4", "pandas==2.2.3"]
    now[0] += 1  # a release made since is seen from now on
    assert memo.recall("k") is None
    memo.remember("other", ["x==1"])  # writing drops what has expired
    assert sorted(p.name for p in (tmp_path / "resolutions").iterdir()) == ["other.txt"]
    off = ResolutionMemo(tmp_path / "off", ttl=0, clock=lambda: now[0])
    off.remember("k", ["x==1"])
    assert off.recall("k") is None and not (tmp_path / "off").exists()


def test_a_repeated_install_resolves_once_within_the_window(tmp_path: Path) -> None:
    """The second and third installs of the same requirements run no ``uv pip compile``; a
    changed requirements file resolves again."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("orch-tiny\n")
    commands: list[str] = []

    def run(command: list[str], env: dict[str, str]) -> tuple[int, str]:
        verb = "compile" if "compile" in command else "install"
        commands.append(verb)
        if verb == "compile":
            out = Path(command[command.index("-o") + 1])
            out.write_text(
                "orch-tiny==2.0\n" if "2" in requirements.read_text() else "orch-tiny==1.0\n"
            )
        else:
            target = Path(command[command.index("--target") + 1])
            target.mkdir(parents=True, exist_ok=True)
            (target / "orch_tiny.py").write_text("")
        return 0, ""

    said: list[str] = []

    def install(run_id: str) -> None:
        context = installs.InstallContext(
            target=tmp_path / run_id / "site-packages",
            python=PY,
            state_dir=tmp_path / "state",
            cwd=tmp_path,
            work_dir=tmp_path / run_id / "work",
        )
        installs.install(["-r", str(requirements)], context, run=run, say=said.append)
        assert (context.target / "orch_tiny.py").is_file()

    install("a")
    install("b")
    install("c")
    assert commands == ["compile", "install"]  # then linked from the environment cache
    assert said[1].startswith("Resolved as before (1 packages, resolution memo ")
    assert said[2].startswith("Reused the environment built for this resolution")
    requirements.write_text("orch-tiny>=2\n")
    install("d")
    assert commands == ["compile", "install", "compile", "install"]
