"""Cluster settings checked as the service checks them, wherever a cluster is described: the
Clusters API's ``create``/``edit`` and a job's ``new_cluster`` (tasks and ``job_clusters``).

What is checked before anything is made: the runtime (``spark_version``, one of
:mod:`.spark_versions`), the node type (this machine's, :mod:`.node_types`), the instance
pools (they must exist; a pool gives the node type, so ``node_type_id`` beside a pool is
refused), the cluster policy (it must exist, and the settings must satisfy its definition, its
defaults filled in when ``apply_policy_default_values`` asks) and the sizes. The messages are
the service's: "Cluster validation error: Can't find an instance pool with id: <id>." for a
pool that does not exist, "The field 'node_type_id' cannot be supplied when an instance pool
ID is provided.". Pools and policies live in the state database
(:class:`~orchestrator.local.state.documents.Documents`, kinds ``instance-pool`` and
``cluster-policy``).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from orchestrator.local.runtime.node_types import LOCAL_NODE_TYPE
from orchestrator.local.runtime.spark_versions import profile
from orchestrator.local.state.api_error import bad_request
from orchestrator.local.state.documents import Documents

__all__ = ["POLICY_TYPES", "check_cluster", "check_policy_definition"]

#: the rule types of a cluster policy definition
POLICY_TYPES = ("fixed", "forbidden", "allowlist", "blocklist", "regex", "range", "unlimited")


def check_cluster(
    settings: dict[str, Any], documents: Documents, *, require_version: bool = True
) -> dict[str, Any]:
    """The settings with their policy's defaults applied, or a 400 naming the problem."""
    out = copy.deepcopy(settings)
    policy_id = out.get("policy_id")
    if policy_id is not None:
        policy = documents.get("cluster-policy", str(policy_id))
        if policy is None:
            raise bad_request(
                f"Cluster validation error: Can't find a cluster policy with id: {policy_id}."
            )
        _apply_policy(out, json.loads(policy.get("definition") or "{}"))
    version = out.get("spark_version")
    if version is None and require_version:
        raise bad_request("Missing required field: spark_version")
    if version is not None and (not isinstance(version, str) or profile(version) is None):
        raise bad_request(f"Invalid spark version {str(version)[:100]}.")
    pool = out.get("instance_pool_id")
    driver_pool = out.get("driver_instance_pool_id")
    for value in (pool, driver_pool):
        if value is not None and documents.get("instance-pool", str(value)) is None:
            raise bad_request(
                f"Cluster validation error: Can't find an instance pool with id: {value}."
            )
    if driver_pool is not None and pool is None:
        raise bad_request("driver_instance_pool_id can only be given with instance_pool_id")
    if pool is not None and out.get("node_type_id") is not None:
        raise bad_request(
            "The field 'node_type_id' cannot be supplied when an instance pool ID is provided."
        )
    if driver_pool is not None and out.get("driver_node_type_id") is not None:
        raise bad_request(
            "The field 'driver_node_type_id' cannot be supplied when a driver instance pool "
            "ID is provided."
        )
    for field in ("node_type_id", "driver_node_type_id"):
        node = out.get(field)
        if node is not None and node != LOCAL_NODE_TYPE:
            raise bad_request(
                f"Node type {str(node)[:100]} is not supported: this workspace's one node type "
                f"is {LOCAL_NODE_TYPE!r} (clusters/list-node-types)"
            )
    _check_size(out)
    return out


def _check_size(settings: dict[str, Any]) -> None:
    workers = settings.get("num_workers")
    if workers is not None and (
        not isinstance(workers, int) or isinstance(workers, bool) or workers < 0
    ):
        raise bad_request("num_workers must be a non-negative integer")
    scale = settings.get("autoscale")
    if scale is not None:
        if not isinstance(scale, dict):
            raise bad_request("Invalid autoscale: expected an object")
        low, high = scale.get("min_workers"), scale.get("max_workers")
        if not isinstance(low, int) or not isinstance(high, int) or not 0 <= low <= high:
            raise bad_request("autoscale needs min_workers <= max_workers, both non-negative")
    minutes = settings.get("autotermination_minutes")
    if minutes is not None and (
        not isinstance(minutes, int) or not (minutes == 0 or 10 <= minutes <= 43200)
    ):
        raise bad_request("autotermination_minutes must be 0 or between 10 and 43200")


def check_policy_definition(text: Any) -> dict[str, Any]:
    """A policy's ``definition``: a JSON object of attribute paths to rules of known types."""
    if text is None or text == "":
        return {}
    if not isinstance(text, str):
        raise bad_request("Invalid policy definition: expected a JSON string")
    try:
        rules = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_request(f"Invalid policy definition: {exc}") from None
    if not isinstance(rules, dict):
        raise bad_request("Invalid policy definition: expected a JSON object")
    for path, rule in rules.items():
        if not isinstance(rule, dict) or rule.get("type") not in POLICY_TYPES:
            raise bad_request(
                f"Invalid policy definition: the rule of {str(path)[:100]} needs a type, one "
                f"of {', '.join(POLICY_TYPES)}"
            )
        if rule["type"] == "regex":
            try:
                re.compile(str(rule.get("pattern", "")))
            except re.error as exc:
                raise bad_request(f"Invalid policy definition: {path}: {exc}") from None
    return rules


def _get(settings: dict[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    if rest and head in ("spark_conf", "spark_env_vars", "custom_tags"):
        return (settings.get(head) or {}).get(rest)
    value: Any = settings
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _set(settings: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if rest and head in ("spark_conf", "spark_env_vars", "custom_tags"):
        settings.setdefault(head, {})[rest] = value
        return
    *parents, last = path.split(".")
    target = settings
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def _apply_policy(settings: dict[str, Any], rules: dict[str, Any]) -> None:
    """Fill the policy's fixed values and defaults, then check every rule (400 on the first
    violation, naming the attribute)."""
    defaults = bool(settings.get("apply_policy_default_values"))
    for path, rule in rules.items():
        if _get(settings, path) is None:
            if rule["type"] == "fixed":
                _set(settings, path, rule.get("value"))
            elif defaults and "defaultValue" in rule:
                _set(settings, path, rule["defaultValue"])
    for path, rule in rules.items():
        value = _get(settings, path)
        problem = _violation(rule, value)
        if problem:
            raise bad_request(f"Validation failed for {path}, {problem}")


def _violation(rule: dict[str, Any], value: Any) -> str | None:
    kind = rule["type"]
    if value is None:
        optional = rule.get("isOptional", kind in ("unlimited", "forbidden", "blocklist"))
        return None if optional else "the value is required by the cluster policy"
    if kind == "fixed" and value != rule.get("value"):
        return f"the value must be {rule.get('value')!r} (is {value!r})"
    if kind == "forbidden":
        return "the cluster policy forbids it"
    if kind == "allowlist" and value not in (rule.get("values") or []):
        return f"the value must be one of {rule.get('values')!r} (is {value!r})"
    if kind == "blocklist" and value in (rule.get("values") or []):
        return f"the value {value!r} is not allowed"
    if kind == "regex" and not re.fullmatch(str(rule.get("pattern", "")), str(value)):
        return f"the value must match {rule.get('pattern')!r} (is {value!r})"
    if kind == "range":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"the value must be a number (is {value!r})"
        low, high = rule.get("minValue"), rule.get("maxValue")
        if (low is not None and number < low) or (high is not None and number > high):
            return f"the value must be between {low} and {high} (is {value!r})"
    return None
