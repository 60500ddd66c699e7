"""CI context detection: Azure DevOps, GitHub Actions, plain git; safe path segments."""

from __future__ import annotations

import string
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.config.context import BuildContext, detect_context, validate_segment
from orchestrator.errors import UsageError

FIXED_NOW = datetime(2026, 5, 23, 10, 15, 0, tzinfo=UTC)

AZURE = {
    "TF_BUILD": "True",
    "BUILD_BUILDID": "4711",
    "BUILD_BUILDNUMBER": "20260523.3",
    "BUILD_REPOSITORY_NAME": "notebooks-ci",
    "BUILD_SOURCEBRANCH": "refs/heads/feature/model",
    "BUILD_SOURCEVERSION": "a" * 40,
    "SYSTEM_COLLECTIONURI": "https://dev.azure.com/contoso/",
    "SYSTEM_TEAMPROJECT": "Data Science",
}

GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_RUN_ID": "987654",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_RUN_NUMBER": "42",
    "GITHUB_REPOSITORY": "contoso/notebooks-ci",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_SHA": "b" * 40,
    "GITHUB_SERVER_URL": "https://github.com",
}


class FakeGit:
    """A git that answers from a table; unknown commands fail like git would."""

    def __init__(self, answers: dict[str, str | None]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, args: Sequence[str], cwd: Path) -> str | None:
        key = " ".join(args)
        self.calls.append(key)
        return self.answers.get(key)


def no_git(args: Sequence[str], cwd: Path) -> str | None:
    return None


def detect(environ: dict[str, str], **kwargs: object) -> BuildContext:
    kwargs.setdefault("git", no_git)
    return detect_context(
        environ=environ,
        cwd=Path("/work/checkout"),
        now=lambda: FIXED_NOW,
        entropy=lambda: "c0ffee",
        **kwargs,  # type: ignore[arg-type]
    )


# -- Azure DevOps -----------------------------------------------------------------------------


def test_azure_devops_build_is_described_from_its_variables() -> None:
    ctx = detect(AZURE)
    assert ctx == BuildContext(
        provider="azure-devops",
        build_id="4711",
        build_number="20260523.3",
        repo_name="notebooks-ci",
        branch="feature/model",
        commit="a" * 40,
        pull_request=None,
        url="https://dev.azure.com/contoso/Data%20Science/_build/results?buildId=4711",
    )


def test_azure_devops_pull_request_build_names_the_pr_and_source_branch() -> None:
    env = {
        **AZURE,
        "BUILD_SOURCEBRANCH": "refs/pull/17/merge",
        "SYSTEM_PULLREQUEST_PULLREQUESTID": "17",
        "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/fix/typo",
    }
    ctx = detect(env)
    assert ctx.pull_request == "17"
    assert ctx.branch == "fix/typo"


def test_azure_devops_pr_number_is_read_from_the_merge_ref_when_no_variable_says_it() -> None:
    ctx = detect({**AZURE, "BUILD_SOURCEBRANCH": "refs/pull/23/merge"})
    assert ctx.pull_request == "23"


def test_azure_devops_building_a_github_repo_uses_the_repo_part_of_owner_slash_repo() -> None:
    ctx = detect({**AZURE, "BUILD_REPOSITORY_NAME": "contoso/notebooks-ci"})
    assert ctx.repo_name == "notebooks-ci"


def test_azure_devops_without_collection_uri_has_no_url() -> None:
    env = {k: v for k, v in AZURE.items() if k != "SYSTEM_COLLECTIONURI"}
    assert detect(env).url is None


def test_azure_devops_without_build_id_is_a_usage_error_naming_the_variable() -> None:
    env = {k: v for k, v in AZURE.items() if k != "BUILD_BUILDID"}
    with pytest.raises(UsageError, match="BUILD_BUILDID"):
        detect(env)


def test_azure_devops_repo_name_with_a_space_is_refused_with_a_hint() -> None:
    with pytest.raises(UsageError) as raised:
        detect({**AZURE, "BUILD_REPOSITORY_NAME": "Data Science Notebooks"})
    message = str(raised.value)
    assert "'Data Science Notebooks'" in message
    assert "space" in message
    assert "--repo-name" in message
    assert "\n" not in message


# -- GitHub Actions ---------------------------------------------------------------------------


def test_github_actions_build_id_is_run_id_and_attempt() -> None:
    ctx = detect(GITHUB)
    assert ctx == BuildContext(
        provider="github-actions",
        build_id="987654-2",
        build_number="42",
        repo_name="notebooks-ci",
        branch="main",
        commit="b" * 40,
        pull_request=None,
        url="https://github.com/contoso/notebooks-ci/actions/runs/987654/attempts/2",
    )


def test_github_actions_pull_request_number_comes_from_the_merge_ref() -> None:
    env = {**GITHUB, "GITHUB_REF": "refs/pull/31/merge", "GITHUB_HEAD_REF": "feature/x"}
    ctx = detect(env)
    assert ctx.pull_request == "31"
    assert ctx.branch == "feature/x"


def test_github_actions_first_attempt_is_assumed_when_attempt_is_missing() -> None:
    env = {k: v for k, v in GITHUB.items() if k != "GITHUB_RUN_ATTEMPT"}
    assert detect(env).build_id == "987654-1"


def test_github_actions_enterprise_server_url_is_used_for_the_run_url() -> None:
    ctx = detect({**GITHUB, "GITHUB_SERVER_URL": "https://git.contoso.com/"})
    assert ctx.url is not None
    assert ctx.url.startswith("https://git.contoso.com/contoso/notebooks-ci/actions/runs/")


def test_github_actions_without_repository_is_a_usage_error() -> None:
    env = {k: v for k, v in GITHUB.items() if k != "GITHUB_REPOSITORY"}
    with pytest.raises(UsageError, match="GITHUB_REPOSITORY"):
        detect(env)


def test_azure_devops_wins_when_both_providers_are_flagged() -> None:
    assert detect({**GITHUB, **AZURE}).provider == "azure-devops"


def test_false_tf_build_is_not_azure_devops() -> None:
    assert detect({**AZURE, "TF_BUILD": "false"}, repo_name="x").provider == "local"


# -- plain git --------------------------------------------------------------------------------


def test_local_build_reads_repo_branch_and_commit_from_git() -> None:
    git = FakeGit(
        {
            "rev-parse --show-toplevel": "/home/me/src/checkout",
            "config --get remote.origin.url": "git@github.com:contoso/notebooks-ci.git",
            "rev-parse --verify -q HEAD": "1234567890abcdef" * 2 + "12345678",
            "symbolic-ref -q --short HEAD": "main",
        }
    )
    ctx = detect({}, git=git)
    assert ctx.provider == "local"
    assert ctx.repo_name == "notebooks-ci"
    assert ctx.branch == "main"
    assert ctx.commit is not None and ctx.commit.startswith("1234567")
    assert ctx.build_id == "20260523T101500Z-1234567-c0ffee"
    assert ctx.build_number == ctx.build_id
    assert ctx.pull_request is None and ctx.url is None


def test_local_build_without_origin_is_named_after_the_toplevel_folder() -> None:
    git = FakeGit({"rev-parse --show-toplevel": "/home/me/src/my-repo"})
    ctx = detect({}, git=git)
    assert ctx.repo_name == "my-repo"
    assert ctx.commit is None
    assert ctx.build_id == "20260523T101500Z-nogit-c0ffee"


def test_local_build_outside_git_is_named_after_the_working_folder() -> None:
    ctx = detect({})
    assert ctx.repo_name == "checkout"
    assert ctx.branch is None


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://github.com/contoso/notebooks-ci", "notebooks-ci"),
        ("https://github.com/contoso/notebooks-ci.git/", "notebooks-ci"),
        ("git@ssh.dev.azure.com:v3/contoso/project/notebooks-ci", "notebooks-ci"),
        ("/srv/git/notebooks-ci.git", "notebooks-ci"),
        ("/home/me/notebooks-ci/.", "notebooks-ci"),  # git clone . elsewhere
        ("../notebooks-ci/./", "notebooks-ci"),
        ("..", "folder"),  # names nothing: the checkout's folder
    ],
)
def test_origin_url_forms_all_give_the_repo_name(url: str, name: str) -> None:
    git = FakeGit({"rev-parse --show-toplevel": "/x/folder", "config --get remote.origin.url": url})
    assert detect({}, git=git).repo_name == name


def test_local_build_ids_differ_between_two_builds_of_the_same_commit() -> None:
    ids = {detect_context(environ={}, cwd=Path("/x"), git=no_git, repo_name="r").build_id}
    ids.add(detect_context(environ={}, cwd=Path("/x"), git=no_git, repo_name="r").build_id)
    assert len(ids) == 2


def test_real_git_checkout_is_detected(tmp_path: Path) -> None:
    repo = tmp_path / "sample-repo"
    repo.mkdir()
    run = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*run, "init", "-q", "-b", "trunk"], check=True)
    (repo / "f.txt").write_text("x")
    subprocess.run([*run, "add", "f.txt"], check=True)
    subprocess.run([*run, "commit", "-q", "-m", "first"], check=True)
    ctx = detect_context(environ={}, cwd=repo, now=lambda: FIXED_NOW, entropy=lambda: "abcdef")
    assert ctx.repo_name == "sample-repo"
    assert ctx.branch == "trunk"
    assert ctx.commit is not None and len(ctx.commit) == 40
    assert ctx.build_id == f"20260523T101500Z-{ctx.commit[:7]}-abcdef"


# -- precedence -------------------------------------------------------------------------------


def test_flags_win_over_environment_which_wins_over_the_provider() -> None:
    env = {**AZURE, "ORCHESTRATOR_BUILD_ID": "from-env", "ORCHESTRATOR_REPO_NAME": "env-repo"}
    assert detect(env).build_id == "from-env"
    assert detect(env).repo_name == "env-repo"
    ctx = detect(env, build_id="from-flag", repo_name="flag-repo")
    assert (ctx.build_id, ctx.repo_name) == ("from-flag", "flag-repo")


def test_local_build_with_a_build_id_flag_uses_it_as_build_number_too() -> None:
    ctx = detect({}, build_id="pr-12-try-3")
    assert ctx.build_id == ctx.build_number == "pr-12-try-3"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("a/b", "path separator"),
        ("..", "'..'"),
        ("x..y", "'..'"),
        ("has space", "space"),
        ("tab\there", "control character"),
        ("nul\x00", "control character"),
        ("", "empty"),
        ("semi;colon", "';'"),
        ("back\\slash", "path separator"),
    ],
)
def test_unsafe_build_ids_from_a_flag_are_refused_with_one_line(value: str, why: str) -> None:
    with pytest.raises(UsageError) as raised:
        if value:
            detect({}, build_id=value)
        else:
            validate_segment(value, what="build id")
    message = str(raised.value)
    assert "build id" in message
    assert why in message
    assert "\n" not in message and "\x00" not in message


def test_a_context_cannot_be_built_with_an_unsafe_repo_name() -> None:
    with pytest.raises(UsageError, match="repo name"):
        BuildContext("local", "1", "1", "../etc", None, None, None, None)


# -- properties of path segments --------------------------------------------------------------

SAFE_CHARS = string.ascii_letters + string.digits + "._-"


@given(st.text(min_size=1, max_size=100))
def test_any_accepted_segment_stays_one_path_segment(value: str) -> None:
    try:
        validate_segment(value, what="build id")
    except UsageError:
        return
    root = PurePosixPath("/Shared/builds/repo")
    joined = root / value
    assert joined.parent == root
    assert joined.name == value
    assert value not in {".", ".."}
    assert value == value.strip()


@given(
    st.text(alphabet=SAFE_CHARS, min_size=1, max_size=100).filter(
        lambda v: ".." not in v and v != "." and not v.startswith("_")
    )
)
def test_every_segment_of_safe_characters_is_accepted(value: str) -> None:
    assert validate_segment(value, what="repo name") == value


@given(
    st.text(alphabet=SAFE_CHARS, max_size=20),
    st.sampled_from(["/", "\\", "..", " ", "\t", "\n", "\x00", "\x7f", "\u2028", "\u200b"]),
    st.text(alphabet=SAFE_CHARS, max_size=20),
)
def test_separators_dots_spaces_and_controls_are_always_refused(
    head: str, bad: str, tail: str
) -> None:
    with pytest.raises(UsageError) as raised:
        validate_segment(head + bad + tail, what="build id")
    assert "\n" not in str(raised.value)


def test_names_starting_with_underscore_are_reserved() -> None:
    from orchestrator.config.context import validate_segment
    from orchestrator.errors import UsageError

    with pytest.raises(UsageError, match="reserved"):
        validate_segment("_data", what="repo name")
