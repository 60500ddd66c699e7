"""The compute a job's settings name, checked when the job is created or changed and when a
run is submitted: every ``new_cluster`` (of a task or of ``job_clusters``) as the Clusters API
checks one (runtime, node type, instance pools and policy that must exist,
``runtime/compute_specs.py``), and every ``job_cluster_key`` a task names must be one of the
job's ``job_clusters``. A made-up ``instance_pool_id`` is refused here, as the service refuses
it: "Cluster validation error: Can't find an instance pool with id: <id>.".

Serverless environments (:func:`check_environments`): each of the job's ``environments`` has
a unique ``environment_key`` and a ``spec`` whose ``dependencies`` are strings, and a task's
``environment_key`` must name one of them (the messages are the local workspace's own: the
service's wording for these was not found).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.local.runtime.compute_specs import check_cluster
from orchestrator.local.state.api_error import bad_request
from orchestrator.local.state.documents import Documents

__all__ = ["check_compute", "check_environments"]


def check_compute(
    settings: Mapping[str, Any], tasks: list[dict[str, Any]], documents: Documents
) -> None:
    keys: set[str] = set()
    for cluster in settings.get("job_clusters") or []:
        if not isinstance(cluster, dict) or not isinstance(cluster.get("job_cluster_key"), str):
            raise bad_request("Invalid job_clusters: each needs a job_cluster_key")
        keys.add(cluster["job_cluster_key"])
        spec = cluster.get("new_cluster")
        if not isinstance(spec, dict):
            raise bad_request(f"Job cluster {cluster['job_cluster_key']}: new_cluster is required")
        check_cluster(spec, documents)
    for task in tasks:
        spec = task.get("new_cluster")
        if spec is not None:
            if not isinstance(spec, dict):
                raise bad_request(f"Task {task.get('task_key')}: new_cluster must be an object")
            check_cluster(spec, documents)
        key = task.get("job_cluster_key")
        if key is not None and key not in keys:
            raise bad_request(
                f"Task {task.get('task_key')} names job cluster {str(key)[:100]}, which is not "
                "one of the job's job_clusters"
            )


def check_environments(settings: Mapping[str, Any], tasks: list[dict[str, Any]]) -> None:
    """The job's ``environments`` and the ``environment_key`` of its tasks."""
    keys: set[str] = set()
    for environment in settings.get("environments") or []:
        key = environment.get("environment_key") if isinstance(environment, dict) else None
        if not isinstance(key, str) or not key:
            raise bad_request("Invalid environments: each needs an environment_key")
        if key in keys:
            raise bad_request(f"Invalid environments: environment_key {key[:100]} is not unique")
        keys.add(key)
        spec = environment.get("spec")
        if spec is not None and not isinstance(spec, dict):
            raise bad_request(f"Environment {key[:100]}: spec must be an object")
        dependencies = (spec or {}).get("dependencies")
        if dependencies is not None and (
            not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies)
        ):
            raise bad_request(f"Environment {key[:100]}: dependencies must be a list of strings")
    for task in tasks:
        key = task.get("environment_key")
        if key is not None and key not in keys:
            raise bad_request(
                f"Task {task.get('task_key')} names environment {str(key)[:100]}, which is not "
                "one of the job's environments"
            )
