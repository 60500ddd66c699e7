"""The pipeline files in devops/ (read as both CI systems read YAML), the jobs each scenario
runs, and the ``orchestrator ...`` commands their bash steps run (:class:`Invocation`), with the
environment and working directory the CI gives them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.pipelines.azure_eval import azure_jobs
from tests.pipelines.expressions import System
from tests.pipelines.github_eval import github_jobs
from tests.pipelines.simulation import (
    PR_INTO_MAIN,
    PUSH_TO_MAIN,
    REPO,
    SCHEDULED,
    Job,
    Scenario,
    Simulation,
)

#: Every pipeline file in devops/, by the CI system that reads it.
PIPELINE_FILES: Mapping[str, System] = {
    "devops/azure-pipelines-ci.yml": "azure",
    "devops/azure-pipelines-cleanup.yml": "azure",
    "devops/github/ci.yml": "github",
    "devops/github/cleanup.yml": "github",
}


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans only, as both CI systems read them: GitHub's ``on:`` stays a key."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class Invocation:
    """One ``orchestrator ...`` command a pipeline step runs."""

    pipeline: str
    scenario: str
    job: str
    step: str
    line: str
    argv: tuple[str, ...]
    exec_: bool  # run with `exec`: the step's process itself, so it gets the cancel's signals
    env: Mapping[str, str]
    cwd: Path

    @property
    def command(self) -> str:
        return self.argv[0] if self.argv and not self.argv[0].startswith("-") else ""

    @property
    def target(self) -> str | None:
        for index, word in enumerate(self.argv):
            if word == "--target" and index + 1 < len(self.argv):
                return self.argv[index + 1]
            if word.startswith("--target="):
                return word.partition("=")[2]
        return None

    def __str__(self) -> str:
        return f"{self.pipeline} [{self.scenario}] {self.job} / {self.step}: {self.line}"


_CHAINED = re.compile(r"(?:&&|\|\||;|\||\$\(|`)\s*(?:exec\s+)?orchestrator\b")


def orchestrator_commands(script: str) -> list[tuple[str, list[str], bool]]:
    """The ``orchestrator`` command lines of a bash script: (line, argv, run with exec)."""
    commands: list[tuple[str, list[str], bool]] = []
    for line in script.replace("\\\n", " ").splitlines():
        assert not _CHAINED.search(line), f"cannot extract the orchestrator command from {line!r}"
        words = shlex.split(line, comments=True)
        exec_ = words[:1] == ["exec"]
        words = words[1:] if exec_ else words
        if words[:1] == ["orchestrator"]:
            argv = words[1:]
        elif (
            len(words) > 2
            and words[0].startswith("python")
            and words[1:3] == ["-m", "orchestrator"]
        ):
            argv = words[3:]
        else:
            continue
        assert not any("$" in word for word in argv), (
            f"shell variables in {line!r}: extend the test"
        )
        commands.append((line.strip(), argv, exec_))
    return commands


@dataclass(frozen=True)
class Pipeline:
    path: str  # relative to the repo
    system: System
    document: Mapping[str, Any]

    @property
    def is_cleanup(self) -> bool:
        return "cleanup" in Path(self.path).stem

    @property
    def triggers(self) -> Mapping[str, Any]:
        if self.system == "github":
            on = self.document["on"]
            return {str(on): None} if isinstance(on, str) else dict(on)
        return self.document

    def scenarios(self) -> list[Scenario]:
        found: list[Scenario] = []
        if self.system == "github":
            on = self.triggers
            found += [PR_INTO_MAIN] if "pull_request" in on else []
            found += [PUSH_TO_MAIN] if "push" in on else []
            found += [SCHEDULED] if "schedule" in on else []
            return found
        # Azure: a missing `pr:` or `trigger:` means "every branch", only `none` turns it off
        found += [PR_INTO_MAIN] if self.document.get("pr", "all") != "none" else []
        found += [PUSH_TO_MAIN] if self.document.get("trigger", "all") != "none" else []
        found += [SCHEDULED] if self.document.get("schedules") else []
        return found

    def jobs(self, scenario: Scenario, sim: Simulation) -> list[Job]:
        if self.system == "github":
            return github_jobs(self.document, scenario, sim)
        return azure_jobs(self.document, scenario, sim)

    def invocations(self, scenario: Scenario, sim: Simulation) -> list[Invocation]:
        found: list[Invocation] = []
        for job in self.jobs(scenario, sim):
            for step in job.steps:
                if step.script is None or not step.runs["succeeded"]:
                    continue
                for line, argv, exec_ in orchestrator_commands(step.script):
                    found.append(
                        Invocation(
                            self.path,
                            scenario.name,
                            job.name,
                            step.name,
                            line,
                            tuple(argv),
                            exec_,
                            step.env,
                            step.cwd,
                        )
                    )
        return found


def load_pipeline(path: str) -> Pipeline:
    document = yaml.load((REPO / path).read_text(encoding="utf-8"), Loader=_YamlLoader)
    assert isinstance(document, Mapping), f"{path}: expected a mapping"
    return Pipeline(path, PIPELINE_FILES[path], document)
