"""The CI pipelines in devops/ (Azure Pipelines, and their GitHub Actions equivalents in
devops/github/): their structure, and the orchestrator commands they run, executed in-process
against the local workspace with each pipeline's variables simulated through the environment,
so a pipeline can never drift from the CLI (an unknown command, flag or target fails here).

How a pipeline run is simulated:

* The scenarios come from the pipeline's triggers: a pull request into main, a push to main, the
  schedule. For each, the CI system's predefined variables are set the way it sets them (Azure
  DevOps: ``TF_BUILD``, ``BUILD_BUILDID``, ...; GitHub: ``GITHUB_ACTIONS``, ``GITHUB_RUN_ID``,
  ...) and the pipeline's expressions are evaluated with them: Azure's template expressions
  (``${{ if }}``, ``${{ else }}``, ``${{ each }}``), macros (``$(name)``) and conditions, GitHub's
  ``${{ }}`` expressions, ``if:`` and matrices. Syntax the evaluator does not know fails the test
  instead of being skipped: extend the evaluator rather than working around it.
* A step's ``env:`` is what reaches the orchestrator. Values that come from variable groups,
  GitHub environments or secrets (unknown here) are replaced by what they mean for the local
  workspace, chosen by the variable they are mapped to (:meth:`Simulation.values`):
  ``DATABRICKS_HOST`` is the test server, the cluster is the local one, Azure identities are fakes.
* Two things are changed on top (:meth:`Simulation.overrides`), because the local workspace is not
  reached the way Azure is: authentication is a PAT (``DATABRICKS_AUTH_TYPE`` and
  ``ORCHESTRATOR_AUTH_TYPE`` set to ``pat``, ``DATABRICKS_TOKEN``) instead of the service
  principal, and storage is a local folder (``ORCHESTRATOR_STORAGE_ROOT`` and
  ``ORCHESTRATOR_STORAGE_CLUSTER_PATH``) instead of the targets' ``abfss://`` URLs.
* Key Vault (the targets' ``key_vault_url``, where prod keeps its service principal's secret) is
  a local double: ``orchestrator.secrets.keyvault_for`` returns the real ``SecretClient``-based
  resolver aimed at tests/kvserver.py's TLS server with a fake credential, filled with a value
  for every ``{keyvault: name}`` the target references.
"""

from __future__ import annotations

import inspect
import itertools
import os
import re
import shlex
import tomllib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from orchestrator import jobs as orchestrator_jobs
from orchestrator import secrets as secrets_module
from orchestrator.cli import main
from orchestrator.config import load_config, resolve_target
from orchestrator.config_schema import BuildConfig, is_secret_name
from orchestrator.connect import LOCAL_CLUSTER_ID
from orchestrator.local import LocalWorkspace
from orchestrator.secrets import KeyVaultSecrets
from tests.conftest import TOKEN, sdk_client
from tests.kvserver import FakeCredential, KeyVaultDouble, client_options, key_vault

REPO = Path(__file__).resolve().parents[1]

System = Literal["azure", "github"]
Status = Literal["succeeded", "failed", "canceled"]
STATUSES: tuple[Status, ...] = ("succeeded", "failed", "canceled")

#: Every pipeline file in devops/, by the CI system that reads it.
PIPELINE_FILES: Mapping[str, System] = {
    "devops/azure-pipelines-ci.yml": "azure",
    "devops/azure-pipelines-cleanup.yml": "azure",
    "devops/github/ci.yml": "github",
    "devops/github/cleanup.yml": "github",
}
#: Where the README tells users to copy the GitHub workflows (the top level here is fixed).
GITHUB_DESTINATIONS: Mapping[str, str] = {
    "devops/github/ci.yml": ".github/workflows/notebooks-ci.yml",
    "devops/github/cleanup.yml": ".github/workflows/notebooks-cleanup.yml",
}
#: The CI pipelines build when any of these change (issue 5).
PROJECT_PATHS = frozenset({"databricks/**", "models/**", "job-template.json", "orchestrator.yml"})

#: How long the orchestrator waits for a cancelled run to end (after SIGINT/SIGTERM).
CANCEL_WAIT = float(inspect.signature(orchestrator_jobs.cancel_run).parameters["timeout"].default)
#: Time a CI job needs besides the orchestrator's own limits: install, deploy, collect, publish.
JOB_OVERHEAD = 15 * 60

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

# Environment variables a CI agent (or a developer's shell) may have that must not leak in.
_CLEARED_PREFIXES = (
    "TF_BUILD",
    "BUILD_",
    "SYSTEM_",
    "AGENT_",
    "PIPELINE_",
    "GITHUB_",
    "RUNNER_",
    "ORCHESTRATOR_",
    "DATABRICKS_",
    "ARM_",
    "AZURE_",
    "PROCESS_",
)

# Literal secrets that must never appear in a pipeline file.
_SECRET_LITERALS = (
    re.compile(r"dapi[0-9a-f]{32}"),  # a Databricks personal access token
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"),  # a JWT
    re.compile(r"[A-Za-z0-9+/]{60,}={0,2}"),  # a storage account key
    re.compile(r"(?i)AccountKey=|SharedAccessSignature=|[?&]sig="),  # connection string, SAS
    re.compile(r"[A-Za-z0-9_~.-]{3}8Q~[A-Za-z0-9_~.-]{31,34}"),  # an Entra ID client secret
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)


# -- reading the files -------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans only, as both CI systems read them: GitHub's ``on:`` stays a key."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _strings(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string in a document (keys too), with where it is."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield (*path, str(key)), str(key)
            yield from _strings(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _strings(item, (*path, str(index)))
    elif isinstance(node, str):
        yield path, node


# -- expressions -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|&&|\|\||[!()\[\],.])|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)


def _truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str):
        return value != ""
    return True


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    return bool(left == right)


def _member(container: Any, key: Any) -> Any:
    if isinstance(container, Mapping):
        wanted = str(key).casefold()
        return next((v for k, v in container.items() if str(k).casefold() == wanted), None)
    if isinstance(container, list) and isinstance(key, float) and key.is_integer():
        return container[int(key)] if 0 <= key < len(container) else None
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _functions(system: System, status: Status) -> dict[str, Callable[..., Any]]:
    """The functions of each CI system's expressions that the pipelines may use (lower case)."""

    def contains(haystack: Any, needle: Any) -> bool:
        if isinstance(haystack, list):
            return any(_equal(item, needle) for item in haystack)
        return str(needle).casefold() in _as_text(haystack).casefold()

    def starts(text: Any, prefix: Any) -> bool:
        return _as_text(text).casefold().startswith(_as_text(prefix).casefold())

    def ends(text: Any, suffix: Any) -> bool:
        return _as_text(text).casefold().endswith(_as_text(suffix).casefold())

    shared: dict[str, Callable[..., Any]] = {
        "contains": contains,
        "startswith": starts,
        "endswith": ends,
        "always": lambda: True,
    }
    if system == "github":
        return shared | {
            "success": lambda: status == "succeeded",
            "failure": lambda: status == "failed",
            "cancelled": lambda: status == "canceled",
        }
    return shared | {
        "eq": _equal,
        "ne": lambda a, b: not _equal(a, b),
        "and": lambda *args: all(_truthy(a) for a in args),
        "or": lambda *args: any(_truthy(a) for a in args),
        "not": lambda a: not _truthy(a),
        "in": lambda a, *options: any(_equal(a, o) for o in options),
        "succeeded": lambda: status == "succeeded",
        "failed": lambda: status == "failed",
        "canceled": lambda: status == "canceled",
        "succeededorfailed": lambda: status != "canceled",
    }


_STATUS_FUNCTIONS = frozenset(
    {"always", "success", "failure", "cancelled", "succeeded", "failed", "canceled"}
    | {"succeededorfailed"}
)


class _Expression:
    """Evaluates the expression syntax both CI systems share: string and number literals, context
    paths (``github.ref``, ``variables['Build.Reason']``), function calls, ``!``, ``==``, ``!=``,
    ``&&``, ``||`` and parentheses. String comparisons ignore case, as both systems do."""

    def __init__(
        self, text: str, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]
    ) -> None:
        self.text = text
        self.names = names
        self.functions = functions
        self.checks_status = False
        self.tokens: list[tuple[str, str]] = []
        position, end = 0, len(text.rstrip())
        while position < end:
            match = _TOKEN.match(text, position)
            if match is None or match.lastgroup is None:
                self._fail(f"unsupported syntax at {text[position:]!r}")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup)))
            position = match.end()
        self.position = 0

    def _fail(self, message: str) -> Any:
        raise AssertionError(
            f"expression {self.text!r}: {message} (extend tests/test_pipelines.py)"
        )

    def value(self) -> Any:
        result = self._or()
        if self.position != len(self.tokens):
            self._fail(f"unexpected {self.tokens[self.position][1]!r}")
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            self._fail("unexpected end")
        self.position += 1
        return self.tokens[self.position - 1]

    def _expect(self, op: str) -> None:
        if self._take()[1] != op:
            self._fail(f"expected {op!r}")

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self.position += 1
            right = self._and()
            left = left if _truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._equality()
        while self._peek() == "&&":
            self.position += 1
            right = self._equality()
            left = right if _truthy(left) else left
        return left

    def _equality(self) -> Any:
        left = self._unary()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            left = _equal(left, self._unary()) == (op == "==")
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self.position += 1
            return not _truthy(self._unary())
        return self._postfix()

    def _postfix(self) -> Any:
        value = self._primary()
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                kind, name = self._take()
                if kind != "name":
                    self._fail("expected a property name after '.'")
                value = _member(value, name)
            else:
                key = self._or()
                self._expect("]")
                value = _member(value, key)
        return value

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text)
        if text == "(":
            value = self._or()
            self._expect(")")
            return value
        if kind != "name":
            self._fail(f"unexpected {text!r}")
        if self._peek() == "(":
            self.position += 1
            args: list[Any] = []
            if self._peek() != ")":
                args.append(self._or())
                while self._peek() == ",":
                    self.position += 1
                    args.append(self._or())
            self._expect(")")
            function = self.functions.get(text.lower())
            if function is None:
                self._fail(f"unknown function {text}()")
            self.checks_status |= text.lower() in _STATUS_FUNCTIONS
            return function(*args)
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if text.lower() == "null":
            return None
        for name, value in self.names.items():
            if name.casefold() == text.casefold():
                return value
        return self._fail(f"unknown name {text!r}")


def evaluate(text: str, names: Mapping[str, Any], system: System) -> Any:
    return _Expression(text, names, _functions(system, "succeeded")).value()


def condition_holds(
    condition: Any, status: Status, names: Mapping[str, Any], system: System
) -> bool:
    """Whether a step or job with this ``condition:`` / ``if:`` runs when the job so far has
    ``status``. Without a status function the condition implies success, as in both systems."""
    if condition is None:
        return status == "succeeded"
    if isinstance(condition, bool):
        return condition and status == "succeeded"
    text = str(condition).strip()
    wrapped = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    expression = _Expression(
        wrapped.group(1) if wrapped else text, names, _functions(system, status)
    )
    result = _truthy(expression.value())
    return result if expression.checks_status else result and status == "succeeded"


# -- Azure Pipelines templates and macros ------------------------------------------------------

_DIRECTIVE = re.compile(r"\$\{\{\s*(if|elseif|else|each)\b(.*?)\}\}", re.S)
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_MACRO = re.compile(r"\$\(([A-Za-z0-9_.-]+)\)")


def _directive(key: Any) -> tuple[str, str] | None:
    match = _DIRECTIVE.fullmatch(key.strip()) if isinstance(key, str) else None
    return (match.group(1), match.group(2).strip()) if match else None


def _branch(
    kind: str, expression: str, chain: bool | None, names: Mapping[str, Any]
) -> tuple[bool, bool | None]:
    """(take this branch, the if-chain state after it: None closed, else whether one was taken)."""
    if kind == "if":
        taken = _truthy(evaluate(expression, names, "azure"))
        return taken, taken
    assert chain is not None, f"${{{{ {kind} }}}} without a preceding ${{{{ if }}}}"
    if kind == "else":
        return not chain, None
    if chain:
        return False, True
    taken = _truthy(evaluate(expression, names, "azure"))
    return taken, taken


def expand_template(node: Any, names: Mapping[str, Any]) -> Any:
    """An Azure Pipelines document with its compile-time expressions applied."""
    if isinstance(node, list):
        items: list[Any] = []
        chain: bool | None = None
        for item in node:
            directive = (
                _directive(next(iter(item))) if isinstance(item, dict) and len(item) == 1 else None
            )
            if directive is None:
                chain = None
                items.append(expand_template(item, names))
                continue
            kind, expression = directive
            body = next(iter(item.values()))
            if kind == "each":
                chain = None
                loop = re.fullmatch(r"(\w+)\s+in\s+(.+)", expression, re.S)
                assert loop, f"unsupported ${{{{ each {expression} }}}}"
                for value in evaluate(loop.group(2), names, "azure") or []:
                    expanded = expand_template(body, {**names, loop.group(1): value})
                    items.extend(expanded if isinstance(expanded, list) else [expanded])
                continue
            taken, chain = _branch(kind, expression, chain, names)
            if taken:
                expanded = expand_template(body, names)
                items.extend(expanded if isinstance(expanded, list) else [expanded])
        return items
    if isinstance(node, dict):
        mapping: dict[Any, Any] = {}
        chain = None
        for key, value in node.items():
            directive = _directive(key)
            if directive is None:
                chain = None
                mapping[expand_template(key, names)] = expand_template(value, names)
                continue
            kind, expression = directive
            assert kind != "each", "${{ each }} inside a mapping: extend the test"
            taken, chain = _branch(kind, expression, chain, names)
            if taken:
                expanded = expand_template(value, names)
                assert isinstance(expanded, dict), f"{key} must hold a mapping here"
                mapping.update(expanded)
        return mapping
    if isinstance(node, str) and "${{" in node:
        whole = _TEMPLATE.fullmatch(node.strip())
        if whole:
            return evaluate(whole.group(1), names, "azure")
        return _TEMPLATE.sub(lambda m: _as_text(evaluate(m.group(1), names, "azure")), node)
    return node


def substitute_macros(text: str, variables: Mapping[str, str]) -> tuple[str, set[str]]:
    """``$(name)`` replaced for known variables; also returns the names that are not known
    (variable-group and secret variables, whose values this test cannot know)."""
    known = {name.casefold(): value for name, value in variables.items()}
    unknown: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        value = known.get(match.group(1).casefold())
        if value is None:
            unknown.add(match.group(1))
            return match.group(0)
        return value

    return _MACRO.sub(replace, text), unknown


def azure_variables(node: Any) -> tuple[dict[str, str], list[str]]:
    """The variables a ``variables:`` block defines, and the variable groups it links."""
    if node is None:
        return {}, []
    if isinstance(node, Mapping):
        return {str(k): _as_text(v) for k, v in node.items()}, []
    values: dict[str, str] = {}
    groups: list[str] = []
    for item in node:
        if "group" in item:
            groups.append(str(item["group"]))
        elif "name" in item:
            values[str(item["name"])] = _as_text(item.get("value"))
        else:
            raise AssertionError(f"unsupported variables entry {item!r}")
    return values, groups


def _env_name(variable: str) -> str:
    """The environment variable Azure Pipelines makes of a (non-secret) pipeline variable."""
    return variable.upper().replace(".", "_")


# -- the simulated runs ------------------------------------------------------------------------


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
            return _github_jobs(self.document, scenario, sim)
        return _azure_jobs(self.document, scenario, sim)

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


def _azure_predefined(scenario: Scenario, sim: Simulation) -> dict[str, str]:
    values = {
        "Build.BuildId": AZURE_BUILD_ID,
        "Build.BuildNumber": "20260101.1",
        "Build.Reason": {"pull_request": "PullRequest", "push": "BatchedCI"}.get(
            scenario.event, "Schedule"
        ),
        "Build.Repository.Name": REPOSITORY,
        "Build.SourceBranch": scenario.ref,
        "Build.SourceBranchName": scenario.ref.rsplit("/", 1)[-1],
        "Build.SourceVersion": COMMIT,
        "Build.SourcesDirectory": str(sim.root),
        "Build.ArtifactStagingDirectory": str(sim.temp / "a"),
        "System.DefaultWorkingDirectory": str(sim.root),
        "System.JobAttempt": "1",
        "System.CollectionUri": "https://dev.azure.com/contoso/",
        "System.TeamProject": "notebooks",
        "Agent.OS": "Linux",
        "Agent.TempDirectory": str(sim.temp),
        "Pipeline.Workspace": str(sim.temp),
    }
    if scenario.event == "pull_request":
        values |= {
            "System.PullRequest.PullRequestId": PULL_REQUEST,
            "System.PullRequest.PullRequestNumber": PULL_REQUEST,
            "System.PullRequest.SourceBranch": "refs/heads/feature/churn-threshold",
            "System.PullRequest.TargetBranch": "refs/heads/main",
        }
    return values


def _azure_jobs(document: Mapping[str, Any], scenario: Scenario, sim: Simulation) -> list[Job]:
    predefined = _azure_predefined(scenario, sim)
    parameters = {p["name"]: p.get("default") for p in document.get("parameters") or []}
    doc = expand_template(dict(document), {"variables": predefined, "parameters": parameters})
    assert "stages" not in doc, "stages: extend the test"
    pipeline_vars, pipeline_groups = azure_variables(doc.get("variables"))
    raw_jobs = doc.get("jobs") or [{"job": "job", "steps": doc.get("steps") or []}]
    result: list[Job] = []
    for raw in raw_jobs:
        assert "job" in raw, f"only plain jobs are simulated, not {sorted(raw)}"
        job_vars, job_groups = azure_variables(raw.get("variables"))
        defined = {**pipeline_vars, **job_vars}
        variables = {**predefined, **defined}
        names = {"variables": variables}
        if not condition_holds(raw.get("condition"), "succeeded", names, "azure"):
            continue
        base_env = {"TF_BUILD": "True"} | {_env_name(k): v for k, v in variables.items()}
        steps = tuple(_azure_step(s, variables, base_env, sim) for s in raw.get("steps") or [])
        groups = (*pipeline_groups, *job_groups)
        result.append(Job(str(raw["job"]), raw, defined, groups, steps))
    return result


def _azure_step(
    raw: Mapping[str, Any],
    variables: Mapping[str, str],
    base_env: Mapping[str, str],
    sim: Simulation,
) -> Step:
    task = str(raw.get("task", ""))
    name = str(raw.get("displayName") or task or raw.get("checkout") or "step")
    inputs = {
        k: substitute_macros(_as_text(v), variables)[0]
        for k, v in (raw.get("inputs") or {}).items()
    }
    script: str | None = None
    for key in ("script", "bash"):
        if key in raw:
            script, unknown = substitute_macros(str(raw[key]), variables)
            assert not unknown, (
                f"step {name!r} uses $({', $('.join(sorted(unknown))}) in its script: values from "
                "variable groups and secrets reach steps through env:, never the script text"
            )
    if task.split("@")[0] in ("CmdLine", "Bash"):
        script = inputs.get("script")
    for key in ("pwsh", "powershell"):
        assert "orchestrator" not in str(raw.get(key, "")), "only bash steps are simulated"
    env = dict(base_env)
    for key, value in (raw.get("env") or {}).items():
        text, unknown = substitute_macros(_as_text(value), variables)
        env[str(key)] = (
            sim.value_for(str(key), f"$({', $('.join(sorted(unknown))})") if unknown else text
        )
    directory = raw.get("workingDirectory")
    cwd = Path(substitute_macros(str(directory), variables)[0]) if directory else sim.root
    runs = {
        s: condition_holds(raw.get("condition"), s, {"variables": variables}, "azure")
        for s in STATUSES
    }
    return Step(name, raw, runs, script, inputs, env, cwd)


def _github_context(
    scenario: Scenario, sim: Simulation, workflow: str
) -> tuple[dict[str, Any], dict[str, str]]:
    ref_name = scenario.ref.removeprefix("refs/heads/").removeprefix("refs/pull/")
    github: dict[str, Any] = {
        "event_name": scenario.event,
        "ref": scenario.ref,
        "ref_name": ref_name,
        "repository": REPOSITORY,
        "repository_owner": REPOSITORY.split("/")[0],
        "run_id": GITHUB_RUN_ID,
        "run_attempt": "1",
        "run_number": "42",
        "sha": COMMIT,
        "workflow": workflow,
        "server_url": "https://github.com",
        "workspace": str(sim.root),
        "head_ref": "",
        "base_ref": "",
        "event": {},
    }
    if scenario.event == "pull_request":
        github |= {
            "head_ref": "feature/churn-threshold",
            "base_ref": "main",
            "event": {"pull_request": {"number": float(PULL_REQUEST)}},
        }
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": scenario.event,
        "GITHUB_REF": scenario.ref,
        "GITHUB_REF_NAME": ref_name,
        "GITHUB_HEAD_REF": github["head_ref"],
        "GITHUB_BASE_REF": github["base_ref"],
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_REPOSITORY_OWNER": github["repository_owner"],
        "GITHUB_RUN_ID": GITHUB_RUN_ID,
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_RUN_NUMBER": "42",
        "GITHUB_SHA": COMMIT,
        "GITHUB_WORKFLOW": workflow,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_WORKSPACE": str(sim.root),
        "GITHUB_STEP_SUMMARY": str(sim.temp / "step-summary.md"),
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(sim.temp),
    }
    return github, env


def _github_expressions(text: str, names: Mapping[str, Any], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        assert not re.search(r"\b(?:secrets|vars)\.", match.group(1)), (
            f"{where} reads secrets or variables: only env: may, so they reach the process and "
            "never the script text"
        )
        return _as_text(evaluate(match.group(1), names, "github"))

    return _TEMPLATE.sub(replace, text)


def _github_env(
    source: Mapping[str, Any], names: Mapping[str, Any], sim: Simulation
) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in source.items():
        text = _as_text(value)
        if re.search(r"\$\{\{[^}]*\b(?:secrets|vars)\.", text):
            env[str(key)] = sim.value_for(str(key), text)
        else:
            env[str(key)] = _github_expressions(text, names, f"env {key}")
    return env


def _github_matrix(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    matrix = (job.get("strategy") or {}).get("matrix")
    if matrix is None:
        return [{}]
    assert isinstance(matrix, Mapping), "a matrix from an expression: extend the test"
    assert not {"include", "exclude"} & set(matrix), "matrix include/exclude: extend the test"
    keys = list(matrix)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*matrix.values())]


def _github_jobs(document: Mapping[str, Any], scenario: Scenario, sim: Simulation) -> list[Job]:
    github, base_env = _github_context(scenario, sim, str(document.get("name", "")))
    result: list[Job] = []
    for job_id, job in (document.get("jobs") or {}).items():
        for matrix in _github_matrix(job):
            names: dict[str, Any] = {
                "github": github,
                "matrix": matrix,
                "inputs": {},
                "needs": {},
                "strategy": {"job-index": 0.0},
                "runner": {"os": "Linux", "temp": str(sim.temp)},
                "job": {},
                "steps": {},
                "env": {},
            }
            if not condition_holds(job.get("if"), "succeeded", names, "github"):
                continue
            declared = _github_env(document.get("env") or {}, names, sim)
            declared |= _github_env(job.get("env") or {}, names, sim)
            names["env"] = declared
            job_env = base_env | declared
            shell = ((job.get("defaults") or {}).get("run") or {}).get("shell", "bash")
            steps = tuple(
                _github_step(s, names, job_env, shell, sim) for s in job.get("steps") or []
            )
            label = (
                f"{job_id} ({', '.join(_as_text(v) for v in matrix.values())})"
                if matrix
                else job_id
            )
            environment = job.get("environment")
            if isinstance(environment, Mapping):
                environment = environment.get("name")
            if environment is not None:
                environment = _github_expressions(str(environment), names, "environment")
            result.append(Job(label, job, {}, (), steps, environment))
    return result


def _github_step(
    raw: Mapping[str, Any],
    names: Mapping[str, Any],
    job_env: Mapping[str, str],
    shell: str,
    sim: Simulation,
) -> Step:
    name = str(raw.get("name") or raw.get("uses") or raw.get("run", "step")).splitlines()[0]
    inputs = {
        str(k): _github_expressions(_as_text(v), names, f"step {name!r} with: {k}")
        for k, v in (raw.get("with") or {}).items()
    }
    script: str | None = None
    if "run" in raw:
        if raw.get("shell", shell) != "bash":
            assert "orchestrator" not in str(raw["run"]), "only bash steps are simulated"
        script = _github_expressions(str(raw["run"]), names, f"step {name!r} run:")
    env = dict(job_env) | _github_env(raw.get("env") or {}, names, sim)
    directory = raw.get("working-directory")
    cwd = sim.root / str(directory) if directory else sim.root
    runs = {s: condition_holds(raw.get("if"), s, names, "github") for s in STATUSES}
    return Step(name, raw, runs, script, inputs, env, cwd)


def load_pipeline(path: str) -> Pipeline:
    document = yaml.load((REPO / path).read_text(encoding="utf-8"), Loader=_YamlLoader)
    assert isinstance(document, Mapping), f"{path}: expected a mapping"
    return Pipeline(path, PIPELINE_FILES[path], document)


PIPELINES = [load_pipeline(path) for path in PIPELINE_FILES]
RUNS = [pytest.param(p, s, id=f"{p.path}-{s.name}") for p in PIPELINES for s in p.scenarios()]


def by_path(path: str) -> Pipeline:
    return next(p for p in PIPELINES if p.path == path)


@pytest.fixture
def sim(tmp_path: Path) -> Simulation:
    """For the structural tests: no server, the repo itself as the checkout."""
    return Simulation(
        root=REPO,
        temp=tmp_path / "agent-temp",
        host="https://adb-1234567890123456.7.azuredatabricks.net",
        storage=tmp_path / "storage",
    )


# -- structure ---------------------------------------------------------------------------------


def test_every_pipeline_file_in_devops_is_known_and_runs_the_orchestrator(sim: Simulation) -> None:
    found = {p.relative_to(REPO).as_posix() for p in (REPO / "devops").rglob("*.y*ml")}
    assert found == set(PIPELINE_FILES)
    for pipeline in PIPELINES:
        commands = [
            i.command
            for scenario in pipeline.scenarios()
            for i in pipeline.invocations(scenario, sim)
            if i.command
        ]
        assert set(commands) == {"cleanup" if pipeline.is_cleanup else "build"}, pipeline.path


def _path_filters(pipeline: Pipeline, trigger: str) -> tuple[list[str], list[str]]:
    """(branches, paths) a CI trigger includes."""
    node = pipeline.triggers[trigger]
    if pipeline.system == "github":
        return list(node.get("branches", [])), list(node.get("paths", []))
    return list(node["branches"]["include"]), list(node["paths"]["include"])


@pytest.mark.parametrize("path", ["devops/azure-pipelines-ci.yml", "devops/github/ci.yml"])
def test_ci_pipelines_validate_pull_requests_and_main_when_the_project_changes(path: str) -> None:
    pipeline = by_path(path)
    assert pipeline.scenarios() == [PR_INTO_MAIN, PUSH_TO_MAIN]
    own_path = GITHUB_DESTINATIONS.get(path, path)
    for trigger in ("pr", "trigger") if pipeline.system == "azure" else ("pull_request", "push"):
        branches, paths = _path_filters(pipeline, trigger)
        assert branches == ["main"], trigger
        assert set(paths) >= PROJECT_PATHS, trigger
        assert own_path in paths, f"{trigger}: a change to the pipeline itself must be validated"
        for pattern in set(paths) - {own_path}:
            folder = pattern.removesuffix("/**")
            assert (REPO / folder).exists(), f"{trigger}: {pattern} matches nothing in the repo"


def test_a_new_push_to_a_pull_request_cancels_its_running_build(sim: Simulation) -> None:
    assert by_path("devops/azure-pipelines-ci.yml").document["pr"]["autoCancel"] is True
    concurrency = by_path("devops/github/ci.yml").document["concurrency"]
    group, cancel = concurrency["group"], str(concurrency["cancel-in-progress"])
    pull_request = {"github": _github_context(PR_INTO_MAIN, sim, "")[0]}
    main = {"github": _github_context(PUSH_TO_MAIN, sim, "")[0]}
    assert _github_expressions(group, pull_request, "") != _github_expressions(group, main, "")
    assert _github_expressions(cancel, pull_request, "") == "true"
    assert _github_expressions(cancel, main, "") == "false"  # builds of main always finish


def _is_daily(cron: str) -> bool:
    minute, hour, *rest = cron.split()
    return minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"]


@pytest.mark.parametrize(
    "path", ["devops/azure-pipelines-cleanup.yml", "devops/github/cleanup.yml"]
)
def test_cleanup_pipelines_run_daily_and_never_on_pushes_or_pull_requests(path: str) -> None:
    pipeline = by_path(path)
    assert pipeline.scenarios() == [SCHEDULED]
    if pipeline.system == "azure":
        assert pipeline.document["trigger"] == "none"
        assert pipeline.document["pr"] == "none"
        schedules = pipeline.document["schedules"]
        # builds age without commits: run even when nothing changed since the last run
        assert all(s.get("always") is True for s in schedules)
        assert all(s["branches"]["include"] == ["main"] for s in schedules)
    else:
        assert set(pipeline.triggers) == {"schedule", "workflow_dispatch"}
        schedules = pipeline.triggers["schedule"]
    assert schedules
    assert all(_is_daily(s["cron"]) for s in schedules), schedules


def test_pull_requests_build_on_dev_main_on_prod_and_cleanup_covers_both(sim: Simulation) -> None:
    for path in ("devops/azure-pipelines-ci.yml", "devops/github/ci.yml"):
        pipeline = by_path(path)
        targets = {
            scenario.name: {i.target for i in pipeline.invocations(scenario, sim) if i.command}
            for scenario in pipeline.scenarios()
        }
        assert targets == {"pull-request": {"dev"}, "main": {"prod"}}, path
    for path in ("devops/azure-pipelines-cleanup.yml", "devops/github/cleanup.yml"):
        cleanup = [i for i in by_path(path).invocations(SCHEDULED, sim) if i.command]
        assert sorted(str(i.target) for i in cleanup) == ["dev", "prod"], path
        for invocation in cleanup:
            argv = invocation.argv
            assert argv[argv.index("--older-than") + 1] == "14d", invocation
            assert argv[argv.index("--keep-last") + 1] == "20", invocation
            assert "--dry-run" not in argv, invocation


def test_every_command_gets_the_settings_of_its_own_target(sim: Simulation) -> None:
    """Building prod with dev's host (or the reverse) must not be possible: the variable group
    (Azure) or environment (GitHub) a job reads is the one named after its target."""
    for pipeline in PIPELINES:
        for scenario in pipeline.scenarios():
            jobs = {j.name: j for j in pipeline.jobs(scenario, sim)}
            for invocation in pipeline.invocations(scenario, sim):
                if not invocation.command:
                    continue
                job = jobs[invocation.job]
                if pipeline.system == "github":
                    assert job.environment == invocation.target, invocation
                else:
                    settings = [g for g in job.groups if g != "notebook-ci-secrets"]
                    assert settings == [f"notebook-ci-{invocation.target}"], invocation


def _results_and_artifacts(job: Job, root: Path) -> tuple[list[Step], list[Step], list[Step]]:
    """(test-result publishers, test-results uploads, executed-notebook uploads) of a job."""
    results = [
        s
        for s in job.steps
        if s.uses.startswith(
            (
                "PublishTestResults@",
                "EnricoMi/publish-unit-test-result-action",
                "dorny/test-reporter",
            )
        )
    ]
    uploads = [
        s
        for s in job.steps
        if s.uses.startswith(("PublishPipelineArtifact@", "actions/upload-artifact@"))
    ]

    def folder(step: Step) -> str:
        path = step.inputs.get("targetPath") or step.inputs.get("path") or ""
        return Path(path).as_posix().removeprefix(root.as_posix() + "/").rstrip("/")

    config = load_config(
        REPO / "orchestrator.yml", target="local", overrides={}, environ={}, root=REPO
    )
    results_dir = config.paths.results.relative_to(REPO).as_posix()
    artifacts_dir = config.paths.artifacts.relative_to(REPO).as_posix()
    return (
        results,
        [s for s in uploads if folder(s) == results_dir],
        [s for s in uploads if folder(s) == artifacts_dir],
    )


def _result_patterns(step: Step, root: Path) -> list[Path]:
    """Where a publisher looks for JUnit files: absolute glob patterns."""
    if step.uses.startswith("PublishTestResults@"):
        base = Path(step.inputs.get("searchFolder") or root)
        return [base / p.strip() for p in step.inputs["testResultsFiles"].splitlines() if p.strip()]
    files = step.inputs.get("files") or step.inputs.get("path") or ""
    return [root / p.strip() for p in files.splitlines() if p.strip()]


@pytest.mark.parametrize("path", ["devops/azure-pipelines-ci.yml", "devops/github/ci.yml"])
def test_test_results_and_notebooks_are_published_even_when_the_build_fails_or_is_cancelled(
    path: str, sim: Simulation
) -> None:
    pipeline = by_path(path)
    config = load_config(
        REPO / "orchestrator.yml", target="local", overrides={}, environ={}, root=REPO
    )
    for scenario in pipeline.scenarios():
        (job,) = pipeline.jobs(scenario, sim)
        publishers, result_uploads, notebook_uploads = _results_and_artifacts(job, sim.root)
        assert publishers, "test results must reach the CI's test tab"
        assert notebook_uploads, "the executed notebooks must be published"
        if pipeline.system == "github":
            assert result_uploads, "the JUnit files must be kept as an artifact too"
        for step in (*publishers, *result_uploads, *notebook_uploads):
            # always(): after success, failure and cancel alike (succeededOrFailed() is not enough)
            assert all(step.runs[s] for s in STATUSES), f"{step.name} must run always()"
        for step in publishers:
            if step.uses.startswith("PublishTestResults@"):
                assert step.inputs["testResultsFormat"] == "JUnit"
            for pattern in _result_patterns(step, sim.root):
                # the file the build writes, TEST-<repo>-<build id>.xml, matches what is published
                written = config.paths.results / f"TEST-{REPO_NAME}-{AZURE_BUILD_ID}.xml"
                assert Path(written).match(str(pattern)), (pattern, written)


def _job_timeouts(job: Job, system: System) -> tuple[float, float | None]:
    """(job timeout, cancel timeout) in seconds, as the CI system applies them."""
    if system == "github":
        return float(job.document["timeout-minutes"]) * 60, None
    return float(job.document["timeoutInMinutes"]) * 60, float(
        job.document["cancelTimeoutInMinutes"]
    ) * 60


@pytest.mark.parametrize("pipeline", [pytest.param(p, id=p.path) for p in PIPELINES])
def test_jobs_outlast_the_orchestrators_own_timeouts_and_let_it_cancel_its_run(
    pipeline: Pipeline, sim: Simulation
) -> None:
    for scenario in pipeline.scenarios():
        for job in pipeline.jobs(scenario, sim):
            assert (
                "timeout-minutes" if pipeline.system == "github" else "timeoutInMinutes"
            ) in job.document
            timeout, cancel_timeout = _job_timeouts(job, pipeline.system)
            invocations = [
                i
                for i in pipeline.invocations(scenario, sim)
                if i.job == job.name and i.command == "build"
            ]
            for invocation in invocations:
                config = load_config(
                    REPO / "orchestrator.yml",
                    target=str(invocation.target),
                    overrides={},
                    environ={**invocation.env, **sim.overrides()},
                    root=REPO,
                )
                own = config.timeouts.build + config.timeouts.cluster_start
                assert timeout >= own + JOB_OVERHEAD, (
                    f"{job.name}: the job's {timeout / 60:.0f} min end before the orchestrator's "
                    f"own limit on {invocation.target} ({own / 60:.0f} min) and the overhead"
                )
            if pipeline.system == "azure":
                assert cancel_timeout is not None and cancel_timeout >= 3 * 60, job.name
                if invocations:
                    # the agent's SIGINT grace (ms) covers cancelling the run and waiting for it
                    grace = float(job.variables["PROCESS_SIGINT_TIMEOUT"]) / 1000
                    assert grace >= CANCEL_WAIT + 30, grace
                    assert cancel_timeout >= grace + 60, "and the publish steps after it"


def test_orchestrator_steps_exec_it_so_that_a_cancel_reaches_it(sim: Simulation) -> None:
    for pipeline in PIPELINES:
        for scenario in pipeline.scenarios():
            for invocation in pipeline.invocations(scenario, sim):
                if invocation.command:
                    assert invocation.exec_, f"{invocation}: start it with `exec`"


def _installed_extras(script: str) -> set[str] | None:
    """The extras of a `python -m pip install .[...]` line of a script (None: no such line)."""
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if words[:4] == ["python", "-m", "pip", "install"] and len(words) == 5:
            match = re.fullmatch(r"\.(?:\[([\w,-]*)\])?", words[4])
            if match:
                return {e.strip() for e in (match.group(1) or "").split(",") if e.strip()}
    return None


@pytest.mark.parametrize("pipeline", [pytest.param(p, id=p.path) for p in PIPELINES])
def test_python_3_11_and_the_package_without_the_local_extra_come_first(
    pipeline: Pipeline, sim: Simulation
) -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"].get(
        "optional-dependencies", {}
    )
    for scenario in pipeline.scenarios():
        for job in pipeline.jobs(scenario, sim):
            steps = list(job.steps)
            python = [
                i
                for i, s in enumerate(steps)
                if s.uses.startswith(("UsePythonVersion@", "actions/setup-python@"))
            ]
            assert python, f"{job.name}: no Python set up"
            inputs = steps[python[0]].inputs
            assert (inputs.get("versionSpec") or inputs.get("python-version")) == "3.11"
            installs = [
                i
                for i, s in enumerate(steps)
                if s.script and _installed_extras(s.script) is not None
            ]
            assert installs, f"{job.name}: no `python -m pip install .`"
            installed = _installed_extras(str(steps[installs[0]].script)) or set()
            # the local workspace's kernels are not for CI agents, which drive a real workspace
            assert "local" not in installed
            if "azure" in extras:  # Key Vault and ADLS Gen2 as an extra: the targets use both
                assert "azure" in installed, f"{job.name}: install '.[azure]'"
            first_command = min(
                i for i, s in enumerate(steps) if s.script and orchestrator_commands(s.script)
            )
            assert python[0] < installs[0] <= first_command


@pytest.mark.parametrize("pipeline", [pytest.param(p, id=p.path) for p in PIPELINES])
def test_secrets_reach_the_orchestrator_only_as_references_in_env(
    pipeline: Pipeline, sim: Simulation
) -> None:
    for where, text in _strings(pipeline.document):
        for pattern in _SECRET_LITERALS:
            assert not pattern.search(text), f"{'.'.join(where)}: looks like a literal secret"
    mapped: set[str] = set()
    for scenario in pipeline.scenarios():
        for job in pipeline.jobs(scenario, sim):
            for name in job.variables:
                assert not is_secret_name(name), (
                    f"variable {name}: secrets belong in a variable group"
                )
            for step in job.steps:
                for key, value in (step.document.get("env") or {}).items():
                    if not is_secret_name(str(key)):
                        continue
                    if pipeline.system == "azure":
                        match = re.fullmatch(r"\$\(([A-Za-z0-9_.-]+)\)", str(value))
                        assert match, f"{step.name}: env {key} must be $(secret-variable)"
                        assert match.group(1) not in job.variables, f"{key}: a variable in the file"
                    else:
                        match = re.fullmatch(
                            r"\$\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}", str(value)
                        )
                        assert match, f"{step.name}: env {key} must be ${{{{ secrets.NAME }}}}"
                    mapped.add(match.group(1))
            if pipeline.system == "azure":
                assert job.groups, (
                    f"{job.name}: secrets come from a variable group linked to Key Vault"
                )
    assert mapped, "the orchestrator needs the service principal's secret"
    for where, text in _strings(pipeline.document):
        in_env = len(where) >= 2 and where[-2] == "env" and is_secret_name(where[-1])
        if pipeline.system == "github":
            assert in_env or "secrets." not in text, f"{'.'.join(where)}: secrets only in env:"
        else:
            used = {m.group(1) for m in _MACRO.finditer(text)}
            assert in_env or not used & mapped, f"{'.'.join(where)}: secrets only in env:"


def test_the_readme_shows_where_to_copy_the_github_workflows() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "## Wiring the pipelines into a project" in readme
    for source, destination in GITHUB_DESTINATIONS.items():
        assert source in readme and destination in readme


# -- running the commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def run_invocation(
    invocation: Invocation,
    sim: Simulation,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    argv: tuple[str, ...] | None = None,
) -> Outcome:
    """Run one command in-process with the step's environment (and the test's overrides) only."""
    with monkeypatch.context() as patch:
        for name in list(os.environ):
            if name == "CI" or name.startswith(_CLEARED_PREFIXES):
                patch.delenv(name)
        for key, value in {**invocation.env, **sim.overrides()}.items():
            patch.setenv(key, value)
        patch.chdir(invocation.cwd)
        capsys.readouterr()
        try:
            code = main(list(argv or invocation.argv))
        except SystemExit as exc:  # argparse: --help, --version, usage errors
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        out, err = capsys.readouterr()
    return Outcome(code, out, err)


def target_config(invocation: Invocation, sim: Simulation) -> BuildConfig:
    """The configuration the command runs with (the step's environment and the overrides)."""
    environ = {**invocation.env, **sim.overrides()}
    target = resolve_target(invocation.target, environ)
    return load_config(None, target=target, overrides={}, environ=environ, root=invocation.cwd)


@dataclass
class Vaults:
    """Stands in for the targets' Key Vaults: every vault URL resolves to one local double
    (tests/kvserver.py: the real SecretClient over TLS, with a fake credential), filled with a
    value for each ``{keyvault: name}`` the target references."""

    double: KeyVaultDouble
    opened: list[str] = field(default_factory=list)  # the vault URLs asked for

    def fill(self, config: BuildConfig) -> dict[str, str]:
        refs = [r.name for r in config.secret_refs().values() if r.source == "keyvault"]
        values = {name: f"simulated-{name}-{uuid.uuid4().hex}" for name in refs}
        self.double.secrets.update(values)
        return values

    def read(self) -> set[str]:
        """The secrets read (GET /secrets/<name>/<version>, with a token)."""
        return {path.strip("/").split("/")[1] for path, auth in self.double.seen if auth}


@pytest.fixture
def vaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vaults]:
    with key_vault(tmp_path / "kv", {}) as double:
        vaults = Vaults(double)

        def keyvault_for(config: BuildConfig) -> KeyVaultSecrets | None:
            if config.key_vault_url is None:
                return None
            vaults.opened.append(config.key_vault_url)
            credential: Any = FakeCredential()
            return KeyVaultSecrets(double.url, credential=credential, **client_options(double))

        monkeypatch.setattr(secrets_module, "keyvault_for", keyvault_for)
        yield vaults


def check_published(
    invocation: Invocation, pipeline: Pipeline, scenario: Scenario, sim: Simulation
) -> None:
    """What the build wrote is what the pipeline publishes, and the sample's tests passed."""
    (job,) = [j for j in pipeline.jobs(scenario, sim) if j.name == invocation.job]
    publishers, _, notebook_uploads = _results_and_artifacts(job, sim.root)
    patterns = [p for s in publishers for p in _result_patterns(s, sim.root)]
    files = sorted({f for p in patterns for f in p.parent.glob(p.name)})
    assert len(files) == 1, f"{patterns} match {files}"
    suites = list(ET.parse(files[0]).getroot().iter("testsuite"))
    assert sum(int(s.get("tests", "0")) for s in suites) > 0
    assert all(s.get("failures") == "0" and s.get("errors", "0") == "0" for s in suites)
    for step in notebook_uploads:
        folder = Path(step.inputs.get("targetPath") or sim.root / step.inputs["path"])
        assert list(folder.rglob("*.html")), f"{step.name}: nothing to publish in {folder}"


def check_secrets(
    outcome: Outcome,
    secrets: Mapping[str, str],
    config: BuildConfig,
    vaults: Vaults,
    system: System,
) -> None:
    """Vault secrets are read from the target's own vault, and their values appear only in the
    line that tells the CI to mask them."""
    announce = "##vso[task.setsecret]" if system == "azure" else "::add-mask::"
    lines = (outcome.out + outcome.err).splitlines()
    shown = [line for line in lines if not line.startswith(announce)]
    assert not [v for v in secrets.values() if any(v in line for line in shown)], outcome
    credential = config.workspace.client_secret or config.workspace.token
    if credential is not None and credential.source == "keyvault":  # prod
        assert config.key_vault_url in vaults.opened
        assert credential.name in vaults.read()
        assert f"{announce}{secrets[credential.name]}" in lines


@pytest.mark.parametrize(("pipeline", "scenario"), RUNS)
def test_pipeline_commands_run_against_the_local_workspace(
    pipeline: Pipeline,
    scenario: Scenario,
    project: Path,
    server: LocalWorkspace,
    vaults: Vaults,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = Simulation(project, tmp_path / "agent-temp", server.url, tmp_path / "storage")
    sim.temp.mkdir()
    invocations = pipeline.invocations(scenario, sim)
    assert any(i.command for i in invocations)
    for invocation in invocations:
        if not invocation.command:  # `orchestrator --version` after the install
            outcome = run_invocation(invocation, sim, monkeypatch, capsys)
            assert outcome.code == 0, f"{invocation}\n{outcome.err}"
            continue
        config = target_config(invocation, sim)
        if invocation.command == "cleanup":
            # a fresh build, kept: the retention (14 days, 20 builds) must leave it alone
            vaults.fill(config)
            seed = ("build", "--target", str(invocation.target), "--keep", "--build-id", "seed-1")
            seeded = run_invocation(invocation, sim, monkeypatch, capsys, argv=seed)
            assert seeded.code == 0, seeded.out + seeded.err
        # new values per command: masking is per process, and these commands share one
        secrets = vaults.fill(config)
        outcome = run_invocation(invocation, sim, monkeypatch, capsys)
        assert outcome.code == 0, f"{invocation}\n{outcome.out}\n{outcome.err}"
        check_secrets(outcome, secrets, config, vaults, pipeline.system)
        if invocation.command == "build":
            check_published(invocation, pipeline, scenario, sim)
            if pipeline.system == "azure":
                assert "##[group]Test results" in outcome.out  # Azure DevOps detected
            else:
                assert (sim.temp / "step-summary.md").read_text(encoding="utf-8").strip()
        else:
            assert sdk_client(server).workspace.get_status(f"/Shared/builds/{REPO_NAME}/seed-1")
            assert (sim.storage / REPO_NAME / "seed-1").is_dir()
