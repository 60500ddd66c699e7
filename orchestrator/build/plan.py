"""What a build will do, decided before any remote call: :func:`prepare` reads the config, the
CI context and the job template, turns the template into the settings of the build's own job
(:mod:`orchestrator.job.build_job`) and plans the deploy and the uploads; bad input of any kind
is a :class:`UsageError` here, before anything changes. ``orchestrator plan`` prints
:func:`plan_document`.

A build root under the build identity's home (``~/...``, the default) is resolved once the
build knows who it runs as (:meth:`BuildPlan.at_home`); until then the plan shows ``~``.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.databricks import DeployItem
from orchestrator.build.changes import select_tasks
from orchestrator.build.deploy_plan import DeployRules, plan_deploy
from orchestrator.build.git_modes import GitRepo, git_repo, in_git_folder, on_git_source
from orchestrator.build.model_registration import (
    RegisterIntent,
    intent_document,
    register_intent,
)
from orchestrator.build.parameters import build_parameters, declare_parameters, job_values
from orchestrator.build.test_frameworks import run_nutter_through_its_notebook
from orchestrator.config.context import BuildContext, detect_context
from orchestrator.config.loader import load_config
from orchestrator.config.schema import BuildConfig
from orchestrator.errors import UsageError
from orchestrator.job.build_job import build_job
from orchestrator.job.template import render_job
from orchestrator.layout import (
    HOME,
    LOCAL_STATE_DIR,
    build_job_name,
    build_prefix,
    data_prefix,
    entry_notebook_path,
    resolve_home,
)
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
    #: the settings of the build's own job (the body of ``jobs/create``)
    job: dict[str, Any]
    build_folder: str
    storage_prefix: str
    deploy_folders: tuple[str, ...]
    #: the repo's notebooks and files; imported in ``workspace`` mode only (a Git mode brings
    #: them from the repository)
    deploy_items: tuple[DeployItem, ...]
    uploads: tuple[tuple[Path, str], ...]  # local folder -> storage sub-prefix
    data: tuple[Path, str] | None  # test data -> its shared, content-addressed prefix
    tasks: tuple[str, ...]  # the task keys this build runs
    idempotency_token: str
    warnings: tuple[str, ...] = ()  # one line each, shown before the build goes on
    git: GitRepo | None = None  # the repository and commit of a Git-mode build
    #: what ``models.register`` will do for this build (None: not configured)
    register: RegisterIntent | None = None

    @property
    def build_root(self) -> str:
        return self.config.build_root

    def at_home(self, user: str) -> BuildPlan:
        """The plan with a build root under ``~`` resolved to ``/Users/<user>``: every
        workspace path it holds (build folder, deploy targets, the run's notebooks and
        parameters). A plan with an absolute build root is returned as it is."""
        root = self.config.build_root
        if not (root == HOME or root.startswith(HOME + "/")):
            return self
        home_root = resolve_home(root, user)

        def move(value: Any) -> Any:
            if isinstance(value, str) and (value == root or value.startswith(root + "/")):
                return home_root + value[len(root) :]
            if isinstance(value, list):
                return [move(v) for v in value]
            if isinstance(value, dict):
                return {k: move(v) for k, v in value.items()}
            return value

        return replace(
            self,
            config=self.config.model_copy(update={"build_root": home_root}),
            parameters=move(self.parameters),
            job=move(self.job),
            build_folder=move(self.build_folder),
            deploy_folders=tuple(move(f) for f in self.deploy_folders),
            deploy_items=tuple(replace(i, target=move(i.target)) for i in self.deploy_items),
        )

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
    #: the model versions ``models.register`` registered (RegisteredVersion)
    registered: tuple[Any, ...] = ()


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
    _check_storage_folder(config)
    _check_seeds(config)
    intent = register_intent(config, context)
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
    job = build_job(
        settings,
        name=build_job_name(repo, context.build_id),
        tags={"repo": repo, "build": context.build_id, "managed-by": "orchestrator"},
        build_folder=folder,
        parameters=parameters,
        tasks=tasks,
        entry_notebook=entry,
    )
    _check_task_notebooks(job, items, folder=folder, source=source, root=config.paths.notebooks)
    git = None
    if config.deploy.mode == "workspace":
        job, harnessed = run_nutter_through_its_notebook(
            job, items, build_folder=folder, results_dir=parameters["results_dir"]
        )
        folders += sorted({posixpath.dirname(i.target) for i in harnessed[len(items) :]})
        items = harnessed
    else:  # the Git folder or the job's git_source brings the notebooks: nothing is imported
        git = git_repo(config, context, environ)
        if config.deploy.mode == "git-folder":
            job = in_git_folder(job, git, build_folder=folder)
        else:
            job = on_git_source(job, git, build_folder=folder)
    warnings += _root_warnings(config)
    attempt = environ.get("SYSTEM_JOBATTEMPT", "")
    token = hashlib.sha256(f"{repo}\n{context.build_id}\n{attempt}".encode()).hexdigest()[:48]
    return BuildPlan(
        config=config,
        context=context,
        settings=settings,
        parameters=parameters,
        job=job,
        build_folder=folder,
        storage_prefix=build_prefix(repo, context.build_id),
        deploy_folders=tuple(folders),
        deploy_items=tuple(items),
        uploads=tuple(uploads),
        data=data,
        tasks=tasks,
        idempotency_token=token,
        warnings=tuple(warnings),
        git=git,
        register=intent,
    )


def _root_warnings(config: BuildConfig) -> list[str]:
    """A build root other users can write: what runs there runs as the build's identity."""
    parts = [p for p in config.build_root.split("/") if p]
    inner = parts[1:] if parts[:1] == ["Workspace"] else parts
    if inner[:1] == ["Shared"]:
        return [
            f"build_root {config.build_root}: every workspace user can change what a build runs "
            "there (all users have CAN MANAGE on /Shared, and it is inherited); use a folder "
            "under the build identity's home, such as ~/orchestrator-builds (the default)"
        ]
    return []


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


def _check_seeds(config: BuildConfig) -> None:
    """Every ``local.dbfs`` folder exists."""
    missing = [
        f"{k}: {display_path(v, config.root)}"
        for k, v in config.local.dbfs.items()
        if not v.is_dir()
    ]
    if missing:
        raise UsageError(f"local.dbfs: not a folder: {', '.join(missing)}")


def _check_storage_folder(config: BuildConfig) -> None:
    """A local storage root must be, or be able to become, a folder: no file on its path."""
    root = config.storage.local_root
    if root is None:
        return
    for place in (root, *root.parents):
        if place.exists():
            if not place.is_dir():
                what = "is a file" if place == root else f"is under {place}, a file"
                raise UsageError(f"storage.root {root}: {what}, not a folder")
            return


def _check_task_notebooks(
    job: Mapping[str, Any],
    items: Sequence[DeployItem],
    *,
    folder: str,
    source: str,
    root: Path,
) -> None:
    """Every notebook a task runs from the build is one the build deploys (an ``.ipynb`` is
    imported as a notebook without its extension); else exit 2, naming task and path, before
    anything is created."""
    notebooks = {i.target for i in items if i.kind == "NOTEBOOK"}
    notebooks |= {i.target[: -len(".ipynb")] for i in items if i.target.endswith(".ipynb")}
    problems = []
    for task in job.get("tasks") or []:
        notebook = task.get("notebook_task") or {}
        path = str(notebook.get("notebook_path") or "")
        if str(notebook.get("source") or "WORKSPACE").upper() != "WORKSPACE":
            continue
        if path.startswith(folder + "/") and path not in notebooks:
            relative = path[len(folder) + 1 :]
            problems.append(
                f"{source}: task {task.get('task_key')}: notebook {relative} is not among the "
                f"notebooks the build deploys from {root} (a file {relative}.py, .r, .sql, "
                ".scala with the notebook header, or .ipynb)"
            )
    if problems:
        raise UsageError("\n".join(problems))


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
        "deploy_mode": plan.config.deploy.mode,
        "git": None
        if plan.git is None
        else {
            "url": plan.git.url,
            "provider": plan.git.provider,
            "commit": plan.git.commit,
            "branch": plan.git.branch,
        },
        "build": plan.marker | {"created": None},
        "job": plan.job,
        "deploy": [
            {
                "source": display_path(i.source, root),
                "target": i.target,
                "type": i.kind,
                "language": i.language,
            }
            for i in (plan.deploy_items if plan.git is None else ())
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
        "parameters": plan.parameters,
        "local_dbfs": {k: display_path(v, root) for k, v in plan.config.local.dbfs.items()},
        "tasks": list(plan.tasks),
        "idempotency_token": plan.idempotency_token,
        "models": {"register": intent_document(plan.register, root)},
    }


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to the repo root where it is inside it, for messages and the plan."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
