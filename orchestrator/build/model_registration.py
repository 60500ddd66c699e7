"""The ``models.register`` step: a build of a configured branch that passed registers its
model, with the build's lineage as tags, and sets the alias.

Two decisions, both pure and both said in one progress line when they say no:

- before anything runs (:func:`register_intent`, shown by ``orchestrator plan``): a
  pull-request build never registers (what it tests is not what gets merged), nor does a build
  of a branch outside ``models.register.branches`` (names or ``fnmatch`` patterns; default:
  ``main``), nor a build whose branch is unknown (a detached checkout);
- after the run (:func:`passed`): only a build that passed registers: its run succeeded and
  every collected test passed (exit 0 with at least one test).

The registering itself (:func:`register_models`) goes through the workspace adapter's
:class:`~orchestrator.ports.ModelRegistry`, the same REST calls for a real workspace and the
local one. A registry failure is the platform's (exit 3); the caller keeps the results it
collected and publishes them all the same.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.config.context import BuildContext
from orchestrator.errors import EXIT_OK
from orchestrator.layout import ORCHESTRATOR_FOLDER, repo_folder

if TYPE_CHECKING:
    from orchestrator.adapters.databricks import LoggedModel, RegisteredVersion, RunView
    from orchestrator.config.schema import BuildConfig, RegisterConfig
    from orchestrator.ports import ModelRegistry
    from orchestrator.results.junit import ResultsSummary

__all__ = [
    "RegisterIntent",
    "default_experiment",
    "intent_document",
    "lineage_tags",
    "passed",
    "register_intent",
    "register_models",
    "test_summary",
    "versions_document",
]

#: the experiment of a ``source: file`` run, under the repo's orchestrator folder (which
#: cleanup never deletes): the run stays as long as the versions made from it
_EXPERIMENT_NAME = "models"


@dataclass(frozen=True)
class RegisterIntent:
    """What ``models.register`` will do for this build: ``allowed`` (so far: the run must
    still pass), and the line that says why or why not."""

    register: RegisterConfig
    allowed: bool
    reason: str


def register_intent(config: BuildConfig, context: BuildContext) -> RegisterIntent | None:
    """None when nothing is configured; else whether this build's branch registers."""
    register = config.models.register_
    if register is None:
        return None
    if context.pull_request:
        return RegisterIntent(
            register,
            False,
            f"no model registered: pull request build (#{context.pull_request}); only builds "
            f"of {_branches(register)} register",
        )
    branch = context.branch
    if not branch:
        return RegisterIntent(
            register, False, "no model registered: the build's branch is unknown (detached)"
        )
    if not any(fnmatch.fnmatchcase(branch, pattern) for pattern in register.branches):
        return RegisterIntent(
            register,
            False,
            f"no model registered: branch {branch} is not {_branches(register)}",
        )
    return RegisterIntent(
        register, True, f"registers {register.name} if the build passes (branch {branch})"
    )


def _branches(register: RegisterConfig) -> str:
    return " or ".join(register.branches)


def passed(exit_code: int, summary: ResultsSummary | None) -> str | None:
    """None when the build passed; else the reason not to register."""
    if summary is None or summary.tests == 0:
        return "no model registered: the build collected no test results"
    if exit_code != EXIT_OK or not summary.ok:
        return f"no model registered: the build did not pass ({test_summary(summary)})"
    return None


def test_summary(summary: ResultsSummary) -> str:
    """``23 passed, 0 failed`` (errors count as failed; skipped said when there are any)."""
    text = f"{summary.passed} passed, {summary.failures + summary.errors} failed"
    return text + (f", {summary.skipped} skipped" if summary.skipped else "")


def lineage_tags(
    context: BuildContext, summary: ResultsSummary, run_url: str | None
) -> dict[str, str]:
    """The tags each registered version gets: which build, commit and branch, how its tests
    went, where its run is."""
    tags = {
        "build_id": context.build_id,
        "repo": context.repo_name,
        "commit": context.commit or "",
        "branch": context.branch or "",
        "tests": test_summary(summary),
        "run_url": run_url or "",
        "build_url": context.url or "",
    }
    return {k: v for k, v in tags.items() if v}


def default_experiment(config: BuildConfig, repo: str) -> str:
    """``<build_root>/<repo>/_orchestrator/models`` (the build root resolved already)."""
    return f"{repo_folder(config.build_root, repo)}/{ORCHESTRATOR_FOLDER}/{_EXPERIMENT_NAME}"


def _models(
    register: RegisterConfig,
    registry: ModelRegistry,
    *,
    config: BuildConfig,
    context: BuildContext,
    run: RunView,
    tags: dict[str, str],
) -> list[LoggedModel]:
    if register.source == "file":
        assert register.path is not None  # the config requires it
        experiment = register.experiment or default_experiment(config, context.repo_name)
        return [
            registry.log_model_file(
                experiment=experiment,
                file=register.path,
                run_name=f"{context.repo_name} {context.build_id}",
                tags=tags,
            )
        ]
    task_runs = [t.run_id for t in run.tasks if t.run_id is not None]
    return registry.job_models(task_runs, experiment=register.experiment)


def register_models(
    intent: RegisterIntent,
    registry: ModelRegistry,
    *,
    config: BuildConfig,
    context: BuildContext,
    run: RunView,
    summary: ResultsSummary,
    say: Callable[[str], None],
) -> list[RegisteredVersion]:
    """Register the build's model(s) (see the module doc); ``say`` gets one line each."""
    register = intent.register
    tags = lineage_tags(context, summary, run.run_page_url)
    models = _models(register, registry, config=config, context=context, run=run, tags=tags)
    if not models:
        where = register.experiment or "any experiment"
        say(f"no model registered: the run's notebooks logged none (searched {where})")
        return []
    done: list[RegisteredVersion] = []
    for model in models:
        version = registry.register_model(
            registry=register.registry,
            name=register.name,
            model=model,
            tags=tags,
            alias=register.alias,
        )
        alias = f" @{version.alias}" if version.alias else ""
        say(f"registered {version.name} version {version.version}{alias} ({model.label})")
        say(f"  {version.url}")
        done.append(version)
    return done


def intent_document(intent: RegisterIntent | None, root: Path) -> dict[str, Any] | None:
    """What ``orchestrator plan`` shows under ``models.register`` (``path`` relative to the
    repo root ``root``)."""
    if intent is None:
        return None
    register = intent.register
    return {
        "name": register.name,
        "registry": register.registry,
        "source": register.source,
        "path": _relative(register.path, root) if register.path is not None else None,
        "alias": register.alias,
        "branches": list(register.branches),
        "experiment": register.experiment,
        "registers": intent.allowed,
        "reason": intent.reason,
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def versions_document(versions: Sequence[RegisteredVersion]) -> list[dict[str, str | None]]:
    """The registered versions as ``--json`` reports them."""
    return [
        {
            "registry": v.registry,
            "name": v.name,
            "version": v.version,
            "alias": v.alias,
            "url": v.url,
            "source": v.source,
        }
        for v in versions
    ]
