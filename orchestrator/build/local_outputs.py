"""The build's outputs on the CI agent, made this build's own at its start.

``test-results/`` holds this build's JUnit only: a CI step that publishes ``**/TEST-*.xml`` on
a reused agent would otherwise publish an earlier build's failures again, so the repo's earlier
``TEST-<repo>-*.xml`` files are removed when a build starts, and the build says so (even one
that then fails before it collects anything leaves no stale result behind). ``artifacts/``
keeps the executed notebooks of the newest :data:`KEPT_ARTIFACTS` builds of the repo.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.build.plan import BuildPlan, display_path
from orchestrator.build.progress import Progress

__all__ = ["KEPT_ARTIFACTS", "results_file", "start_outputs"]

#: builds whose executed notebooks stay in ``artifacts/`` (this one included)
KEPT_ARTIFACTS = 5


def results_file(plan: BuildPlan) -> Path:
    """Where this build's merged JUnit goes: ``test-results/TEST-<repo>-<build_id>.xml``."""
    return plan.config.paths.results / f"TEST-{plan.context.repo_name}-{plan.context.build_id}.xml"


def start_outputs(plan: BuildPlan, progress: Progress) -> None:
    """Remove the repo's earlier results and all but the newest artifacts (see above)."""
    mine = results_file(plan)
    stale = sorted(p for p in mine.parent.glob(f"TEST-{plan.context.repo_name}-*.xml") if p != mine)
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        where = display_path(mine.parent, plan.config.root)
        progress.info(f"{where}: removed {len(stale)} result files of earlier builds")
    artifacts = plan.config.paths.artifacts
    if not artifacts.is_dir():
        return
    builds = [p for p in artifacts.iterdir() if p.is_dir() and p.name != plan.context.build_id]
    builds.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[KEPT_ARTIFACTS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
