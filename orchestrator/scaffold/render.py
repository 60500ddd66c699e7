"""The text of the files ``orchestrator init`` writes: ``orchestrator.yml`` (a ``local`` target,
commented ``dev``/``prod`` examples, optional folders commented out with what was found) and
``job-template.json`` (one task per notebook to run, each through the entry notebook)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from orchestrator.scaffold.detect import Findings, Notebook

__all__ = ["render_config", "render_template", "task_keys"]

_KEY = re.compile(r"[^\w.-]+")

_CONFIG = """\
# orchestrator.yml, written by `orchestrator init`: what `orchestrator build` deploys and runs.
# Reference: the orchestrator's README (Configuration) and docs/template.md (job template).
version: 1

defaults:
  build_root: ~/orchestrator-builds   # builds go to <build_root>/<repo>/<build_id>/; ~ is the
                                      # home of the identity builds run as: only it can write there
  paths:
    notebooks: .                      # the repo's notebooks and files (deploy.mode: how)
    job_template: job-template.json
    results: test-results             # merged JUnit for the CI's test tab (never deployed)
    artifacts: artifacts              # executed notebooks as HTML (never deployed)
{optional}
  deploy:
{mode}    gitignore: true                   # .gitignore'd files are not deployed
    exclude: []                       # more gitignore-style patterns to leave out
  junit:
    required: false                   # true: a test task that writes no JUnit XML fails
  timeouts:
    build: 1h
{seeds}
targets:
  # The embedded, Databricks-compatible local workspace: `orchestrator build` as is.
  local:
    workspace:
      host: ""
    storage:
      root: .orchestrator/storage

  # A real workspace (uncomment, then `orchestrator build --target dev`):
  # dev:
  #   workspace:
  #     host: ${{DATABRICKS_HOST}}
  #     auth_type: ${{DATABRICKS_AUTH_TYPE:-azure-cli}}
  #     client_id: ${{ARM_CLIENT_ID:-}}
  #     tenant_id: ${{ARM_TENANT_ID:-}}
  #     client_secret: {{env: ARM_CLIENT_SECRET}}
  #   cluster_id: ${{DATABRICKS_CLUSTER_ID}}
  #   storage:
  #     root: abfss://builds@<account>.dfs.core.windows.net/ci
  #     account_key: {{env: STORAGE_ACCOUNT_KEY}}
  #
  # prod:
  #   workspace:
  #     host: ${{DATABRICKS_HOST}}
  #     auth_type: azure-client-secret
  #     client_id: ${{ARM_CLIENT_ID}}
  #     tenant_id: ${{ARM_TENANT_ID}}
  #     client_secret: {{keyvault: databricks-sp-secret}}
  #   cluster_id: ${{DATABRICKS_CLUSTER_ID}}
  #   key_vault_url: https://<vault>.vault.azure.net
  #   storage:
  #     root: abfss://builds@<account>.dfs.core.windows.net/ci
  #     account_key: {{keyvault: <account>-key}}
"""


def render_config(found: Findings) -> str:
    """``orchestrator.yml``; folders found for storage are suggested, commented out."""
    lines = [
        "    # Optional, uploaded to storage instead of deployed (uncomment to use; the job",
        "    # parameters data_dir, models_dir and tests_dir then point at them):",
    ]
    lines += [f"    # test_data: {p.as_posix()}" for p in found.data[:1]] or [
        "    # test_data: data"
    ]
    lines += [f"    # models: {p.as_posix()}" for p in found.models[:1]] or ["    # models: models"]
    scripts = [p.as_posix() for p in (*found.pytest, *found.testthat)]
    if scripts:
        lines += ["    # test_scripts:", *(f"    #   - {s}" for s in scripts)]
    return _CONFIG.format(optional="\n".join(lines), mode=_mode(found), seeds=_seeds(found))


def _seeds(found: Findings) -> str:
    """``local.dbfs`` proposed (commented) for DBFS files the notebooks read that the repo
    holds: the local workspace gets them at build start."""
    if not found.dbfs_seeds:
        return ""
    lines = [
        "  # The notebooks read DBFS files that this repo holds; the local workspace gets them",
        "  # from here at build start (a real workspace gets them from your infrastructure):",
        "  # local:",
        "  #   dbfs:",
        *(f"  #     {k}: {v.as_posix()}" for k, v in sorted(found.dbfs_seeds.items())),
    ]
    return "\n".join(lines) + "\n"


def _mode(found: Findings) -> str:
    """``deploy.mode``, said for every repo; a Git mode proposed (commented) for a repo whose
    notebooks or tests import a package from its root."""
    lines = [
        "    # mode: workspace (default), a per-build folder of workspace files (the repo root",
        "    # is not on sys.path); git-folder, a per-build Git folder at the build's commit",
        "    # (the repo root is on sys.path); git, the tasks run from Git at the build's",
        "    # commit, nothing uploaded. The Git modes need the workspace's Git credentials.",
    ]
    if found.root_imports:
        packages = ", ".join(found.root_imports)
        lines += [
            f"    # The notebooks or tests import {packages} from the repo root: a Git mode",
            "    # gives them the root on sys.path, as on Databricks:",
            "    # mode: git-folder",
        ]
    return "\n".join(lines) + "\n"


def task_keys(notebooks: Sequence[Notebook]) -> list[str]:
    """A unique task key per notebook, from its name (its path when names collide)."""
    names = [_KEY.sub("_", n.path.stem) for n in notebooks]
    keys: list[str] = []
    for notebook, name in zip(notebooks, names, strict=True):
        key = name if names.count(name) == 1 else _KEY.sub("_", notebook.workspace_name)
        while key in keys:
            key += "_"
        keys.append(key[:100])
    return keys


def render_template(notebooks: Sequence[Notebook]) -> str:
    """``job-template.json``: one task per notebook, its path relative to the build folder (the
    build's parameters reach every task's widgets, so none need be listed)."""
    tasks = [
        {
            "task_key": key,
            "description": f"runs {notebook.path.as_posix()} of the build",
            "existing_cluster_id": "${cluster_id}",
            "notebook_task": {
                "notebook_path": notebook.workspace_name,
                "source": "WORKSPACE",
            },
            "timeout_seconds": "${task_timeout_seconds}",
            "max_retries": 0,
        }
        for key, notebook in zip(task_keys(notebooks), notebooks, strict=True)
    ]
    template = {
        "name": "${job_name}",
        "description": "CI builds of ${repo_name}, started by `orchestrator build`.",
        "tags": {"repo": "${repo_name}", "managed-by": "orchestrator"},
        "max_concurrent_runs": 16,
        "queue": {"enabled": True},
        "timeout_seconds": "${job_timeout_seconds}",
        "tasks": tasks,
    }
    return json.dumps(template, indent=2) + "\n"
