"""What a build will do, decided before any remote call: :func:`prepare` reads the config, the
CI context and the job template, and plans the deploy and the uploads; bad input of any kind is a
:class:`UsageError` here, before anything changes. ``orchestrator plan`` prints
:func:`plan_document`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.databricks import DeployItem
from orchestrator.build.changes import select_tasks
from orchestrator.build.deploy_plan import DeployRules, plan_deploy
from orchestrator.build.parameters import build_parameters, declare_parameters, job_values
from orchestrator.config.context import BuildContext, detect_context
from orchestrator.config.loader import load_config
from orchestrator.config.schema import BuildConfig
from orchestrator.errors import UsageError
from orchestrator.job.template import render_job
from orchestrator.layout import LOCAL_STATE_DIR, build_prefix, data_prefix, entry_notebook_path
from orchestrator.services import LOCAL_CLUSTER_ID
from orchestrator.storage.base import tree_digest

__all__ = [
    "BuildOptions",
    "BuildPlan",
    "BuildResult",
    "display_path",
    "plan_document",
    "prepare",
]


@dataclass(frozen=True)
class BuildOptions:
    config_path: Path | None = None
    target: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    build_id: str | None = None
    repo_name: str | None = None
    changed_since: str | None = None


@dataclass(frozen=True)
class BuildPlan:
    config: BuildConfig
    context: BuildContext
    settings: dict[str, Any]
    parameters: dict[str, str]
    entry_notebook: str
    build_folder: str
    storage_prefix: str
    deploy_folders: tuple[str, ...]
    deploy_items: tuple[DeployItem, ...]
    uploads: tuple[tuple[Path, str], ...]  # local folder -> storage sub-prefix
    data: tuple[Path, str] | None  # test data -> its shared, content-addressed prefix
    tasks: tuple[str, ...]  # the task keys this build runs
    idempotency_token: str
    warnings: tuple[str, ...] = ()  # one line each, shown before the build goes on

    @property
    def marker(self) -> dict[str, str | None]:
        c = self.context
        return {
            "build_id": c.build_id,
            "build_number": c.build_number,
            "repo": c.repo_name,
            "branch": c.branch,
            "commit": c.commit,
            "pull_request": c.pull_request,
            "provider": c.provider,
            "url": c.url,
            "target": self.config.target,
            "data": self.data[1] if self.data else None,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }


@dataclass(frozen=True)
class BuildResult:
    exit_code: int
    run_id: int | None = None
    run_url: str | None = None
    summary: Any = None  # ResultsSummary once collected
    document: dict[str, Any] = field(default_factory=dict)
    local_state: Path | None = None  # the kept local workspace state that holds the run


def prepare(options: BuildOptions, *, environ: Mapping[str, str], cwd: Path) -> BuildPlan:
    """Everything decided without a remote call; UsageError on any bad input."""
    config = load_config(
        options.config_path,
        target=options.target,
        overrides=options.overrides,
        environ=environ,
        cwd=cwd,
    )
    context = detect_context(
        environ=environ, cwd=config.root, build_id=options.build_id, repo_name=options.repo_name
    )
    repo = context.repo_name
    entry = entry_notebook_path(config.build_root, repo)
    settings, warnings = _render_job(config, repo, entry)
    parameters = build_parameters(config=config, context=context)
    source = display_path(config.paths.job_template, config.root)
    settings = declare_parameters(settings, parameters, source=source)
    _check_junit_tasks(config, settings)
    folder = parameters["build_folder"]
    folders, items = plan_deploy(
        config.paths.notebooks, folder, exclude=config.paths.storage_only, rules=_rules(config)
    )
    uploads: list[tuple[Path, str]] = [(p, f"tests/{p.name}") for p in config.paths.test_scripts]
    if config.paths.models is not None:
        uploads.append((config.paths.models, "models"))
    data = None
    test_data = config.paths.test_data
    if test_data is not None and test_data.is_dir():
        # stored once by content hash, shared read-only by every build with the same data
        data = (test_data, data_prefix(tree_digest(test_data)))
        parameters["data_dir"] = f"{config.storage.cluster_root.rstrip('/')}/{data[1]}"
    tasks = tuple(t["task_key"] for t in settings["tasks"])
    if options.changed_since:
        tasks = select_tasks(settings, config=config, since=options.changed_since)
    attempt = environ.get("SYSTEM_JOBATTEMPT", "")
    token = hashlib.sha256(f"{repo}\n{context.build_id}\n{attempt}".encode()).hexdigest()[:48]
    return BuildPlan(
        config=config,
        context=context,
        settings=settings,
        parameters=parameters,
        entry_notebook=entry,
        build_folder=folder,
        storage_prefix=build_prefix(repo, context.build_id),
        deploy_folders=tuple(folders),
        deploy_items=tuple(items),
        uploads=tuple(uploads),
        data=data,
        tasks=tasks,
        idempotency_token=token,
        warnings=tuple(warnings),
    )


def _rules(config: BuildConfig) -> DeployRules:
    """What of the notebooks folder is deployed; never the orchestrator's own outputs."""
    never = [config.root / LOCAL_STATE_DIR, config.paths.results, config.paths.artifacts]
    if config.storage.local_root is not None:
        never.append(config.storage.local_root)
    if config.paths.models is not None:
        never.append(config.paths.models)
    return DeployRules(
        include=config.deploy.include,
        exclude=config.deploy.exclude,
        gitignore_root=config.root if config.deploy.gitignore else None,
        never=tuple(never),
    )


def _check_junit_tasks(config: BuildConfig, settings: Mapping[str, Any]) -> None:
    keys = {str(t.get("task_key")) for t in settings["tasks"]}
    unknown = [k for k in config.junit.required_tasks if k not in keys]
    if unknown:
        raise UsageError(
            f"junit.required_tasks: no task {', '.join(map(repr, unknown))} in the job "
            f"(tasks: {', '.join(sorted(keys))})"
        )


def _render_job(config: BuildConfig, repo: str, entry: str) -> tuple[dict[str, Any], list[str]]:
    """The repo's job settings from its template, and the template's warnings."""
    cluster_id = config.cluster_id or (LOCAL_CLUSTER_ID if config.workspace.is_local else "")
    warnings: list[str] = []
    settings = render_job(
        config.paths.job_template,
        values=job_values(
            config=config, repo_name=repo, cluster_id=cluster_id, entry_notebook=entry
        ),
        warnings=warnings,
    )
    return settings, warnings


def plan_document(plan: BuildPlan) -> dict[str, Any]:
    """What ``orchestrator plan`` prints: the job, the files and where they go, the run."""
    root = plan.config.root
    storage_root = plan.config.storage.root.rstrip("/")
    return {
        "target": plan.config.target,
        "workspace": plan.config.workspace.host or "local (embedded)",
        "build": plan.marker | {"created": None},
        "job": plan.settings,
        "entry_notebook": plan.entry_notebook,
        "deploy": [
            {
                "source": display_path(i.source, root),
                "target": i.target,
                "type": i.kind,
                "language": i.language,
            }
            for i in plan.deploy_items
        ],
        "storage": [
            {
                "source": display_path(src, root),
                "target": f"{storage_root}/{plan.storage_prefix}/{dst}",
            }
            for src, dst in plan.uploads
        ]
        + [
            {"source": display_path(src, root), "target": f"{storage_root}/{dst}", "shared": True}
            for src, dst in ([plan.data] if plan.data else [])
        ],
        "run": {
            "job_parameters": plan.parameters,
            "tasks": list(plan.tasks),
            "idempotency_token": plan.idempotency_token,
        },
    }


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to the repo root where it is inside it, for messages and the plan."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
