"""What a simulated CI run is made of: the scenarios a pipeline starts in (its triggers), the
values the CI systems give the steps, what the values only a real project knows (variable groups,
GitHub environments, secrets) stand for against the local workspace (:class:`Simulation`), and
the jobs and steps that :mod:`tests.pipelines.azure_eval` and :mod:`tests.pipelines.github_eval`
make of a pipeline file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.services import LOCAL_CLUSTER_ID
from tests.conftest import TOKEN
from tests.pipelines.expressions import Status

#: The repository root: the checkout the pipelines build.
REPO = Path(__file__).resolve().parents[2]

# What the CI systems tell the steps in the simulated runs.
REPOSITORY = "contoso/sample-notebooks"
REPO_NAME = "sample-notebooks"
AZURE_BUILD_ID = "9001"
GITHUB_RUN_ID = "123456789"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PULL_REQUEST = "7"
FAKE_CLIENT_ID = "00000000-0000-0000-0000-00000000c1d0"
FAKE_TENANT_ID = "00000000-0000-0000-0000-0000000071d0"
FAKE_CLIENT_SECRET = "simulated-client-secret"  # a stand-in, never sent anywhere


@dataclass(frozen=True)
class Scenario:
    """One way a pipeline starts, as its triggers allow."""

    name: str
    event: Literal["pull_request", "push", "schedule"]
    ref: str


PR_INTO_MAIN = Scenario("pull-request", "pull_request", f"refs/pull/{PULL_REQUEST}/merge")
PUSH_TO_MAIN = Scenario("main", "push", "refs/heads/main")
SCHEDULED = Scenario("schedule", "schedule", "refs/heads/main")


@dataclass(frozen=True)
class Simulation:
    """Where a simulated run happens and what the unknown values stand for."""

    root: Path  # the checkout: the working directory of every step
    temp: Path  # the agent's temporary folder
    host: str  # the workspace that DATABRICKS_HOST means
    storage: Path  # the local folder that replaces the targets' abfss:// storage

    def values(self) -> dict[str, str]:
        """What a variable-group, GitHub-environment or secret value means here, by the
        environment variable a step maps it to."""
        return {
            "DATABRICKS_HOST": self.host,
            "DATABRICKS_CLUSTER_ID": LOCAL_CLUSTER_ID,
            "DATABRICKS_TOKEN": TOKEN,
            "ARM_CLIENT_ID": FAKE_CLIENT_ID,
            "ARM_TENANT_ID": FAKE_TENANT_ID,
            "ARM_CLIENT_SECRET": FAKE_CLIENT_SECRET,
            "AZURE_CLIENT_ID": FAKE_CLIENT_ID,
            "AZURE_TENANT_ID": FAKE_TENANT_ID,
            "AZURE_CLIENT_SECRET": FAKE_CLIENT_SECRET,
            # the build step's output variables: the dev and prod targets register no model
            "REGISTERED_MODEL": "",
            "REGISTERED_MODEL_URL": "",
        }

    def value_for(self, env_name: str, source: str) -> str:
        value = self.values().get(env_name)
        assert value is not None, (
            f"{env_name} is mapped from {source}, whose value this test cannot know: say what it "
            "means for the local workspace in Simulation.values()"
        )
        return value

    def overrides(self) -> dict[str, str]:
        """Set on top of a step's environment: the local workspace takes a PAT, not an Entra ID
        service principal, and the targets' abfss:// storage is a local folder here."""
        return {
            "DATABRICKS_AUTH_TYPE": "pat",
            "ORCHESTRATOR_AUTH_TYPE": "pat",  # prod writes its auth_type in orchestrator.yml
            "DATABRICKS_TOKEN": TOKEN,
            "DATABRICKS_CONFIG_FILE": "/nonexistent/databrickscfg",
            "ORCHESTRATOR_STORAGE_ROOT": str(self.storage),
            "ORCHESTRATOR_STORAGE_CLUSTER_PATH": str(self.storage),
        }


@dataclass(frozen=True)
class Step:
    name: str
    document: Mapping[str, Any]  # after template expansion
    runs: Mapping[Status, bool]  # whether it runs after the job so far succeeded/failed/...
    script: str | None  # shell text with the CI's substitutions done
    inputs: Mapping[str, str]  # a task's inputs / an action's `with:`, substitutions done
    env: Mapping[str, str]  # the process environment the CI gives it (simulated)
    cwd: Path

    @property
    def uses(self) -> str:
        return str(self.document.get("task") or self.document.get("uses") or "")


@dataclass(frozen=True)
class Job:
    name: str
    document: Mapping[str, Any]
    variables: Mapping[str, str]  # Azure: pipeline and job variables defined in the file
    groups: tuple[str, ...]  # Azure: the variable groups linked
    steps: tuple[Step, ...]
    environment: str | None = None  # GitHub: the environment whose variables and secrets it gets
