"""Configuration: orchestrator.yml + environment + flags, validated with every problem at once."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pydantic
import pytest

from orchestrator.config.loader import (
    BuildConfig,
    ConfigError,
    load_config,
    resolve_secret,
    resolve_target,
)
from orchestrator.config.schema import SecretRef, is_secret_name, parse_duration
from orchestrator.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]

BASIC = """\
version: 1
defaults:
  build_root: /Shared/builds
  timeouts:
    build: 30m
    poll: 10
targets:
  local: {}
  dev:
    workspace:
      host: https://adb-123.azuredatabricks.net/
    cluster_id: 0101-abcdef
  prod:
    workspace:
      host: https://adb-999.azuredatabricks.net
    cluster_id: 0202-abcdef
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orchestrator.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(
    path: Path | None,
    target: str = "local",
    *,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> BuildConfig:
    return load_config(
        path, target=target, overrides=overrides or {}, environ=environ or {}, root=root
    )


def problems_of(path: Path | None, target: str = "local", **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(path, target, **kwargs)  # type: ignore[arg-type]
    return str(raised.value).splitlines()


# -- the sample file --------------------------------------------------------------------------


def test_sample_file_local_target_is_the_embedded_workspace_with_local_storage() -> None:
    config = load(REPO_ROOT / "orchestrator.yml", "local")
    assert config.workspace.is_local
    assert config.cluster_id is None
    assert config.storage.local_root == REPO_ROOT / ".orchestrator" / "storage"
    assert config.paths.notebooks == REPO_ROOT / "databricks"
    assert config.paths.storage_only == (
        REPO_ROOT / "databricks/tests/data",
        REPO_ROOT / "databricks/tests/pytest",
        REPO_ROOT / "databricks/tests/testthat",
    )
    assert config.paths.job_template == REPO_ROOT / "job-template.json"
    assert config.concurrency.deploy == 16
    assert config.timeouts.build == 3600


def test_sample_file_dev_target_reads_host_and_cluster_from_the_environment() -> None:
    environ = {
        "DATABRICKS_HOST": "https://adb-1.azuredatabricks.net",
        "DATABRICKS_CLUSTER_ID": "0101-dev",
    }
    config = load(REPO_ROOT / "orchestrator.yml", "dev", environ=environ)
    assert config.workspace.host == "https://adb-1.azuredatabricks.net"
    assert config.workspace.auth_type == "azure-cli"
    assert config.workspace.client_id is None  # ${ARM_CLIENT_ID:-} with nothing set
    assert config.cluster_id == "0101-dev"
    assert config.storage.is_remote
    assert config.secret_refs() == {
        "workspace.client_secret": SecretRef(env="ARM_CLIENT_SECRET"),
        "storage.account_key": SecretRef(keyvault="stnotebookcidev-key"),
    }


def test_sample_file_prod_target_without_its_variables_names_each_missing_one() -> None:
    lines = problems_of(REPO_ROOT / "orchestrator.yml", "prod")
    assert any(
        "targets.prod.workspace.host" in line and "DATABRICKS_HOST" in line for line in lines
    )
    assert any("targets.prod.cluster_id" in line for line in lines)


# -- merging and precedence -------------------------------------------------------------------


def test_target_values_are_deep_merged_over_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, BASIC), "dev")
    assert config.workspace.host == "https://adb-123.azuredatabricks.net"
    assert config.timeouts.build == 1800
    assert config.timeouts.poll == 10
    assert config.timeouts.cluster_start == 1200  # built-in default
    assert config.target == "dev"
    assert config.root == tmp_path
    assert config.config_file == tmp_path / "orchestrator.yml"


def test_environment_wins_over_file_and_flags_win_over_environment(tmp_path: Path) -> None:
    path = write(tmp_path, BASIC)
    environ = {"ORCHESTRATOR_CLUSTER_ID": "from-env", "ORCHESTRATOR_DEPLOY_CONCURRENCY": "4"}
    config = load(path, "dev", environ=environ)
    assert (config.cluster_id, config.concurrency.deploy) == ("from-env", 4)
    config = load(path, "dev", environ=environ, overrides={"cluster_id": "from-flag"})
    assert (config.cluster_id, config.concurrency.deploy) == ("from-flag", 4)


def test_empty_environment_variables_are_ignored(tmp_path: Path) -> None:
    config = load(write(tmp_path, BASIC), "dev", environ={"ORCHESTRATOR_CLUSTER_ID": ""})
    assert config.cluster_id == "0101-abcdef"


def test_flag_can_point_a_target_at_the_local_workspace(tmp_path: Path) -> None:
    config = load(write(tmp_path, BASIC), "dev", overrides={"workspace.host": ""})
    assert config.workspace.is_local


def test_flags_accept_booleans_durations_and_lists(tmp_path: Path) -> None:
    config = load(
        write(tmp_path, BASIC),
        overrides={"keep": "yes", "timeouts.build": "1h30m", "paths.test_scripts": "a, b"},
    )
    assert config.keep is True
    assert config.timeouts.build == 5400
    assert config.paths.test_scripts == (tmp_path / "a", tmp_path / "b")


def test_target_comes_from_flag_then_environment_then_local() -> None:
    assert resolve_target("prod", {"ORCHESTRATOR_TARGET": "dev"}) == "prod"
    assert resolve_target(None, {"ORCHESTRATOR_TARGET": "dev"}) == "dev"
    assert resolve_target(None, {}) == "local"


def test_yaml_merge_keys_share_settings_between_targets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        x-azure: &azure
          workspace: {host: "https://adb-5.azuredatabricks.net"}
          cluster_id: shared-cluster
        targets:
          dev:
            <<: *azure
          prod:
            <<: *azure
            cluster_id: prod-cluster
        """,
    )
    assert load(path, "dev").cluster_id == "shared-cluster"
    assert load(path, "prod").cluster_id == "prod-cluster"


# -- finding the file -------------------------------------------------------------------------


def test_without_a_file_local_uses_built_in_defaults(tmp_path: Path) -> None:
    config = load(None, root=tmp_path)
    assert config.workspace.is_local
    assert config.config_file is None
    assert config.build_root == "~/orchestrator-builds"
    assert config.storage.root == str(tmp_path / ".orchestrator" / "storage")


def test_without_a_file_other_targets_are_unknown(tmp_path: Path) -> None:
    assert problems_of(None, "dev", root=tmp_path) == [
        "unknown target 'dev': no orchestrator.yml found"
    ]


def test_file_in_the_root_is_found_without_a_path(tmp_path: Path) -> None:
    write(tmp_path, BASIC)
    assert load(None, "dev", root=tmp_path).cluster_id == "0101-abcdef"


def test_orchestrator_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASIC)
    config = load(None, "prod", environ={"ORCHESTRATOR_CONFIG": str(path)})
    assert config.cluster_id == "0202-abcdef"


def test_a_missing_explicit_file_is_one_problem(tmp_path: Path) -> None:
    lines = problems_of(tmp_path / "nope.yml")
    assert len(lines) == 1 and "cannot read the file" in lines[0]


def test_unknown_target_lists_the_defined_ones(tmp_path: Path) -> None:
    (line,) = problems_of(write(tmp_path, BASIC), "qa")
    assert line.endswith("unknown target 'qa' (defined: dev, local, prod)")


def test_local_target_is_implicit_when_the_file_does_not_define_it(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults: {keep: true}\ntargets: {dev: {}}\n")
    assert load(path, "local").keep is True


# -- ${VAR} -----------------------------------------------------------------------------------


def test_variables_defaults_and_escapes_are_expanded(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        defaults:
          build_root: /Shared/${TEAM}/builds
          cluster_id: ${CLUSTER:-fallback-cluster}
          storage:
            cluster_path: /dbfs/$${literal}
        """,
    )
    config = load(path, environ={"TEAM": "data"})
    assert config.build_root == "/Shared/data/builds"
    assert config.cluster_id == "fallback-cluster"
    assert config.storage.cluster_path == "/dbfs/${literal}"


def test_an_unset_variable_is_an_error_at_its_line_naming_the_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        targets:
          dev:
            workspace:
              host: https://adb-1.azuredatabricks.net
            cluster_id: ${DEV_CLUSTER}
        """,
    )
    assert problems_of(path, "dev") == [
        "orchestrator.yml:5:17: targets.dev.cluster_id: environment variable DEV_CLUSTER is not "
        "set (or write ${DEV_CLUSTER:-default})"
    ]


def test_unset_variables_of_other_targets_do_not_matter(tmp_path: Path) -> None:
    path = write(tmp_path, "targets:\n  local: {}\n  prod: {cluster_id: '${PROD_CLUSTER}'}\n")
    assert load(path, "local").cluster_id is None


def test_an_unterminated_variable_is_an_error(tmp_path: Path) -> None:
    (line,) = problems_of(write(tmp_path, "defaults:\n  cluster_id: ${OOPS\n"))
    assert "defaults.cluster_id" in line and "unterminated" in line


# -- secrets ----------------------------------------------------------------------------------


def test_a_literal_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        targets:
          dev:
            workspace:
              host: https://adb-1.azuredatabricks.net
              token: dapi0123456789abcdef
            cluster_id: c1
        """,
    )
    (line,) = problems_of(path, "dev")
    assert line.startswith("orchestrator.yml:5:14: targets.dev.workspace.token: a literal secret")
    assert "dapi0123456789abcdef" not in line


def test_literal_secrets_are_refused_in_every_target_and_block(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        x-shared:
          password: hunter2
        targets:
          local: {}
          prod:
            storage:
              account_key: c2VjcmV0
              sas_token: ${SAS}
        """,
    )
    lines = problems_of(path, "local")
    text = "\n".join(lines)
    assert "x-shared.password: a literal secret" in text
    assert "targets.prod.storage.account_key: a literal secret" in text
    assert "targets.prod.storage.sas_token: a literal secret" in text
    assert "hunter2" not in text and "c2VjcmV0" not in text


def test_secret_references_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        defaults:
          key_vault_url: https://kv-ci.vault.azure.net/
          workspace:
            token: {env: DATABRICKS_TOKEN}
          storage:
            connection_string: {keyvault: storage-conn}
        """,
    )
    config = load(path)
    assert config.workspace.token == SecretRef(env="DATABRICKS_TOKEN")
    assert str(config.storage.connection_string) == "keyvault:storage-conn"
    assert config.key_vault_url == "https://kv-ci.vault.azure.net"


def test_a_keyvault_reference_needs_a_vault(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  storage:\n    account_key: {keyvault: acct-key}\n")
    (line,) = problems_of(path)
    assert "storage.account_key: a keyvault: reference needs key_vault_url" in line


def test_a_reference_names_exactly_one_source(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  workspace:\n    token: {env: A, keyvault: b}\n")
    (line,) = problems_of(path)
    assert "defaults.workspace.token" in line and "either" in line


def test_secret_flags_take_references_not_values(tmp_path: Path) -> None:
    path = write(tmp_path, BASIC)
    config = load(path, overrides={"workspace.token": "env:MY_TOKEN"})
    assert config.workspace.token == SecretRef(env="MY_TOKEN")
    (line,) = problems_of(path, overrides={"workspace.token": "dapi-secret"})
    assert line == "command line: workspace.token: expected env:NAME or keyvault:NAME"


def test_resolving_an_env_reference_names_the_field_never_a_value() -> None:
    ref = SecretRef(env="DATABRICKS_TOKEN")
    value = resolve_secret(ref, field="workspace.token", environ={"DATABRICKS_TOKEN": "s3cr3t"})
    assert value == "s3cr3t"
    with pytest.raises(UsageError, match=r"workspace.token: environment variable DATABRICKS_TOKEN"):
        resolve_secret(ref, field="workspace.token", environ={})


def test_resolving_a_keyvault_reference_asks_the_vault() -> None:
    ref = SecretRef(keyvault="sp-secret")
    vault = {"sp-secret": "v"}
    assert resolve_secret(ref, field="f", environ={}, keyvault=vault.__getitem__) == "v"
    with pytest.raises(UsageError, match="Key Vault"):
        resolve_secret(ref, field="f", environ={})


@pytest.mark.parametrize(
    "name",
    ["token", "sas_token", "account_key", "client_secret", "password", "connection_string", "pat"],
)
def test_secret_like_names_are_recognised(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["key_vault_url", "client_id", "tenant_id", "host", "auth_type", "cluster_id", "keep"]
)
def test_ordinary_names_are_not_secret_like(name: str) -> None:
    assert not is_secret_name(name)


# -- validation, all problems at once ---------------------------------------------------------


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        defaults:
          clster_id: abc
          concurrency:
            deploy: 0
          build_root: Shared/builds
        targets:
          dev:
            workspace:
              host: http://adb-1.azuredatabricks.net
            timeouts:
              build: soon
        """,
    )
    lines = problems_of(path, "dev", environ={"ORCHESTRATOR_POLL_INTERVAL": "-5"})
    assert lines[0] == (
        "orchestrator.yml:2:3: defaults.clster_id: unknown setting 'clster_id' "
        "(did you mean 'cluster_id'?)"
    )
    assert lines[1].startswith("orchestrator.yml:4:13: defaults.concurrency.deploy: ")
    assert lines[2].startswith("orchestrator.yml:5:15: defaults.build_root: expected an absolute")
    assert lines[3].startswith("orchestrator.yml:9:13: targets.dev.workspace.host: plain http")
    assert lines[4].startswith("orchestrator.yml:11:14: targets.dev.timeouts.build: expected")
    assert lines[5] == (
        "environment ORCHESTRATOR_POLL_INTERVAL: timeouts.poll: Input should be greater than 0"
    )
    assert len(lines) == 6


def test_a_missing_cluster_is_reported_at_the_target(tmp_path: Path) -> None:
    path = write(tmp_path, "targets:\n  dev:\n    workspace: {host: 'https://adb-1.net'}\n")
    assert problems_of(path, "dev") == [
        "orchestrator.yml:2:3: targets.dev.cluster_id: required when workspace.host is set"
    ]


def test_a_variable_set_by_a_flag_no_longer_counts_as_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  cluster_id: ${UNSET_CLUSTER}\n")
    with pytest.raises(ConfigError) as raised:
        load(path, overrides={"cluster_id": "from-flag"})
    # the file's problem stays (the file is wrong), but nothing else is derived from it
    assert len(raised.value.problems) == 1


def test_invalid_yaml_points_at_the_problem(tmp_path: Path) -> None:
    (line,) = problems_of(write(tmp_path, "defaults:\n  cluster_id: [a, b\n"))
    assert line.startswith("orchestrator.yml:3:1: invalid YAML")


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    (line,) = problems_of(write(tmp_path, "defaults:\n  keep: true\n  keep: false\n"))
    assert line == "orchestrator.yml:3:3: defaults.keep: duplicate key"


def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    (line,) = problems_of(write(tmp_path, "- a\n- b\n"))
    assert "expected a mapping" in line


def test_unknown_top_level_keys_and_versions_are_reported(tmp_path: Path) -> None:
    lines = problems_of(write(tmp_path, "version: 2\ntarget:\n  dev: {}\n"))
    assert any("version: only version 1" in line for line in lines)
    assert any("unknown setting 'target' (did you mean 'targets'?)" in line for line in lines)


def test_loader_fields_cannot_be_set_from_the_file(tmp_path: Path) -> None:
    (line,) = problems_of(write(tmp_path, "defaults:\n  root: /elsewhere\n"))
    assert "defaults.root: unknown setting 'root'" in line


def test_an_unknown_flag_is_reported_with_a_suggestion(tmp_path: Path) -> None:
    (line,) = problems_of(write(tmp_path, BASIC), overrides={"cluster": "x"})
    assert line.startswith("command line: cluster: unknown setting 'cluster'")


def test_aliases_cannot_blow_up_the_loader(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    text = "x-bomb:\n" + "".join(f"  {line}\n" for line in levels)
    lines = problems_of(write(tmp_path, text))
    assert any("too large" in line for line in lines)


# -- field rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("https://adb-1.azuredatabricks.net/", "https://adb-1.azuredatabricks.net"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("", None),
    ],
)
def test_hosts_are_normalized(tmp_path: Path, host: str, expected: str | None) -> None:
    overrides = {"workspace.host": host, "cluster_id": "c"}
    assert load(None, root=tmp_path, overrides=overrides).workspace.host == expected


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        (
            "abfss://builds@acct.dfs.core.windows.net/ci/",
            "abfss://builds@acct.dfs.core.windows.net/ci",
        ),
        ("/mnt/ci-storage", "/mnt/ci-storage"),
    ],
)
def test_storage_roots_are_local_folders_or_abfss(tmp_path: Path, root: str, expected: str) -> None:
    config = load(None, root=tmp_path, overrides={"storage.root": root})
    assert config.storage.root == expected
    assert config.storage.cluster_root == expected


@pytest.mark.parametrize("root", ["s3://bucket/x", "abfss://Bad_Container@acct/x", "wasbs://c@a/x"])
def test_other_storage_urls_are_refused(tmp_path: Path, root: str) -> None:
    (line,) = problems_of(None, root=tmp_path, overrides={"storage.root": root})
    assert line.startswith("command line: storage.root: ")


@pytest.mark.parametrize(
    ("build_root", "why"),
    [
        ("/Shared/../x", "expected a normalized workspace path"),
        ("/", "must not be the workspace root"),
        ("//x", "expected an absolute workspace path"),
        ("/a//b", "expected a normalized workspace path"),
    ],
)
def test_build_roots_must_be_normalized_absolute_paths(
    tmp_path: Path, build_root: str, why: str
) -> None:
    (line,) = problems_of(None, root=tmp_path, overrides={"build_root": build_root})
    assert line.startswith(f"command line: build_root: {why}")


def test_a_trailing_slash_on_build_root_is_dropped(tmp_path: Path) -> None:
    config = load(None, root=tmp_path, overrides={"build_root": "/Shared/builds/"})
    assert config.build_root == "/Shared/builds"


def test_poll_interval_cannot_exceed_the_build_timeout(tmp_path: Path) -> None:
    (line,) = problems_of(None, root=tmp_path, overrides={"timeouts.poll": "2h"})
    assert "timeouts.poll: must not be longer than timeouts.build" in line


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("1h30m", 5400.0), ("1.5h", 5400.0), (12, 12)],
)
def test_durations_are_read_in_seconds(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_the_config_is_frozen(tmp_path: Path) -> None:
    config = load(None, root=tmp_path)
    with pytest.raises(pydantic.ValidationError):
        config.cluster_id = "x"
    with pytest.raises(pydantic.ValidationError):
        config.timeouts.build = 1
