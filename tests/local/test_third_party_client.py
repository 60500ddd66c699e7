"""A third-party client nobody here wrote, against the local workspace: the services of
``databricks-api`` (generated over the legacy databricks-cli's ``ApiClient``: ``text/json``
bodies, ``/api/2.0`` paths). It drives clusters, pools, policies, secrets with ACLs and a
pool-backed job the way its users' scripts do, without databricks-sdk. The client always
speaks https and drops the port from the host, so its base URL is pointed at the local
workspace by hand (what a user of it against a local server has to do too)."""

from __future__ import annotations

import json

import pytest

from orchestrator.local.server import LocalWorkspace

databricks_api = pytest.importorskip("databricks_api")


class _Services:
    """``DatabricksAPI``'s services over an ``ApiClient`` whose URL keeps the port."""

    def __init__(self, ws: LocalWorkspace) -> None:
        from databricks_cli.sdk import ApiClient, service

        client = ApiClient(host=ws.url, token=ws.token)
        client.url = f"{ws.url}/api/"
        self.cluster = service.ClusterService(client)
        self.instance_pool = service.InstancePoolService(client)
        self.policy = service.PolicyService(client)
        self.secret = service.SecretService(client)
        self.jobs = service.JobsService(client)


def test_databricks_api_drives_compute_secrets_and_jobs(ws: LocalWorkspace) -> None:
    db = _Services(ws)
    keys = [v["key"] for v in db.cluster.list_spark_versions()["versions"]]
    assert "16.4.x-scala2.12" in keys
    (node,) = db.cluster.list_node_types()["node_types"]
    cluster_id = db.cluster.create_cluster(
        cluster_name="legacy",
        spark_version=keys[0],
        node_type_id=node["node_type_id"],
        num_workers=1,
    )["cluster_id"]
    assert db.cluster.get_cluster(cluster_id)["cluster_name"] == "legacy"
    db.cluster.pin_cluster(cluster_id)
    db.cluster.delete_cluster(cluster_id)
    assert db.cluster.get_cluster(cluster_id)["state"] == "TERMINATED"
    events = db.cluster.get_events(cluster_id, order="ASC")["events"]
    assert [e["type"] for e in events][:2] == ["CREATING", "STARTING"]
    db.cluster.permanent_delete_cluster(cluster_id)
    assert cluster_id not in {
        c["cluster_id"] for c in db.cluster.list_clusters().get("clusters", [])
    }

    pool_id = db.instance_pool.create_instance_pool(
        instance_pool_name="legacy", node_type_id="local", max_capacity=2
    )["instance_pool_id"]
    assert db.instance_pool.get_instance_pool(pool_id)["state"] == "ACTIVE"
    policy_id = db.policy.create_policy(
        name="legacy", definition=json.dumps({"num_workers": {"type": "range", "maxValue": 2}})
    )["policy_id"]
    assert [p["name"] for p in db.policy.list_policies()["policies"]] == ["legacy"]

    db.secret.create_scope("legacy")
    db.secret.put_secret("legacy", "k", string_value="v")
    db.secret.put_acl("legacy", "users", "READ")
    acls = {a["principal"]: a["permission"] for a in db.secret.list_acls("legacy")["items"]}
    assert acls == {"local@localhost": "MANAGE", "users": "READ"}

    cluster = {
        "spark_version": "15.4.x-scala2.12",
        "instance_pool_id": pool_id,
        "policy_id": policy_id,
        "num_workers": 1,
    }
    task = {"task_key": "t", "new_cluster": cluster, "notebook_task": {"notebook_path": "/nb"}}
    job_id = db.jobs.create_job(name="legacy", tasks=[task], version="2.1")["job_id"]
    assert db.jobs.get_job(job_id, version="2.1")["settings"]["tasks"][0]["new_cluster"] == cluster
    with pytest.raises(Exception, match="Can't find an instance pool"):
        db.jobs.create_job(
            name="made-up pool",
            tasks=[{**task, "new_cluster": {**cluster, "instance_pool_id": "0727-nope"}}],
            version="2.1",
        )
