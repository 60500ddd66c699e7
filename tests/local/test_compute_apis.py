"""Clusters, instance pools and cluster policies through databricks-sdk: the SDK's selectors
feed ``clusters.create(...).result()``, a cluster's life cycle and events, several clusters,
pools and policies stored and checked, and made-up ids refused at cluster and job create. The
bad requests and the state they leave alone are in tests/local/test_bad_input.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from databricks.sdk.errors import InvalidParameterValue, NotFound, ResourceAlreadyExists
from databricks.sdk.service import compute, jobs

from orchestrator.local.runtime.spark_versions import PROFILES
from orchestrator.local.server import LocalWorkspace
from tests.conftest import sdk_client

NB = "/Shared/nb"


@pytest.fixture
def w(ws: LocalWorkspace):  # type: ignore[no-untyped-def]
    return sdk_client(ws)


def test_the_sdks_selectors_find_a_runtime_and_this_machine(w) -> None:  # type: ignore[no-untyped-def]
    versions = {v.key: v.name for v in w.clusters.spark_versions().versions}
    assert versions == {p.key: p.name for p in PROFILES}
    assert versions["16.4.x-scala2.12"] == "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.12)"
    assert w.clusters.select_spark_version(latest=True, long_term_support=True) == (
        "16.4.x-scala2.12"
    )
    assert w.clusters.select_spark_version(latest=True, scala="2.13") == "18.0.x-scala2.13"
    assert w.clusters.select_spark_version(long_term_support=True, scala="2.13") == (
        "17.3.x-scala2.13"
    )
    (node,) = w.clusters.list_node_types().node_types
    assert node.node_type_id == "local" and node.num_cores >= 1 and node.memory_mb > 0
    assert w.clusters.select_node_type(local_disk=True) == "local"


def test_a_cluster_goes_through_its_life_cycle(w) -> None:  # type: ignore[no-untyped-def]
    version = w.clusters.select_spark_version(latest=True, long_term_support=True)
    created = w.clusters.create(
        cluster_name="ci",
        spark_version=version,
        node_type_id=w.clusters.select_node_type(local_disk=True),
        num_workers=1,
        spark_env_vars={"STAGE": "ci"},
    ).result()
    cid = created.cluster_id
    assert created.state == compute.State.RUNNING and created.creator_user_name
    assert created.spark_version == version and created.cluster_source == compute.ClusterSource.API
    w.clusters.edit(cid, spark_version="15.4.x-scala2.12", cluster_name="ci2", num_workers=2)
    got = w.clusters.wait_get_cluster_running(cid)
    assert (got.cluster_name, got.spark_version, got.num_workers) == ("ci2", "15.4.x-scala2.12", 2)
    assert got.spark_env_vars is None  # edit replaces the settings
    w.clusters.resize(cid, num_workers=3).result()
    w.clusters.restart(cid).result()
    w.clusters.pin(cid)
    w.clusters.unpin(cid)
    w.clusters.delete(cid).result()
    assert w.clusters.get(cid).state == compute.State.TERMINATED
    assert w.clusters.get(cid).termination_reason.code == compute.TerminationReasonCode.USER_REQUEST
    w.clusters.start(cid).result()
    kinds = [e.type.value for e in w.clusters.events(cid, order=compute.GetEventsOrder.ASC)]
    assert kinds[:3] == ["CREATING", "STARTING", "RUNNING"]
    for kind in ("EDITED", "RESIZING", "RESTARTING", "PINNED", "UNPINNED", "TERMINATING"):
        assert kind in kinds
    newest = next(iter(w.clusters.events(cid)))
    assert newest.type == compute.EventType.RUNNING
    paged = list(w.clusters.events(cid, limit=2))  # the SDK follows next_page
    assert len(paged) == len(kinds)
    w.clusters.permanent_delete(cid)
    with pytest.raises(NotFound):
        w.clusters.get(cid)
    assert cid not in {c.cluster_id for c in w.clusters.list()}


def test_several_clusters_and_a_job_on_each(ws: LocalWorkspace, w) -> None:  # type: ignore[no-untyped-def]
    ids = [
        w.clusters.create_and_wait(
            cluster_name=f"c{i}", spark_version="15.4.x-scala2.12"
        ).cluster_id
        for i in range(2)
    ]
    listed = {c.cluster_id for c in w.clusters.list()}
    assert set(ids) <= listed and len(listed) == 3  # and the workspace's own
    running = {
        c.cluster_id
        for c in w.clusters.list(
            filter_by=compute.ListClustersFilterBy(cluster_states=[compute.State.RUNNING])
        )
    }
    assert set(ids) <= running
    tasks = [
        jobs.Task(
            task_key=f"t{i}",
            existing_cluster_id=cid,
            notebook_task=jobs.NotebookTask(notebook_path=NB),
        )
        for i, cid in enumerate(ids)
    ]
    run = w.jobs.submit(run_name="two clusters", tasks=tasks).result()
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert sorted(t.existing_cluster_id for t in run.tasks) == sorted(ids)


def test_created_clusters_outlive_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.local.server import start_local_workspace
    from tests.conftest import TOKEN
    from tests.fakes import FakeExecutor

    with start_local_workspace(
        tmp_path / "s", token=TOKEN, executor=FakeExecutor(), cluster_start_delay=0
    ) as ws:
        cid = sdk_client(ws).clusters.create_and_wait(spark_version="15.4.x-scala2.12").cluster_id
    with start_local_workspace(
        tmp_path / "s", token=TOKEN, executor=FakeExecutor(), cluster_start_delay=0
    ) as ws:
        again = sdk_client(ws).clusters.get(cid)
        assert again.state == compute.State.TERMINATED and again.spark_version == "15.4.x-scala2.12"


def test_pools_are_stored_listed_and_checked(w) -> None:  # type: ignore[no-untyped-def]
    pool_id = w.instance_pools.create(
        instance_pool_name="ci",
        node_type_id="local",
        min_idle_instances=0,
        max_capacity=4,
        preloaded_spark_versions=["15.4.x-scala2.12"],
    ).instance_pool_id
    pool = w.instance_pools.get(pool_id)
    assert pool.instance_pool_name == "ci" and pool.state == compute.InstancePoolState.ACTIVE
    assert pool.stats.used_count == 0
    w.instance_pools.edit(pool_id, instance_pool_name="ci2", node_type_id="local", max_capacity=8)
    assert [p.instance_pool_name for p in w.instance_pools.list()] == ["ci2"]
    with pytest.raises(InvalidParameterValue, match="node type"):
        w.instance_pools.edit(pool_id, instance_pool_name="x", node_type_id="other")
    # a cluster from the pool: the pool gives the node type
    cluster = w.clusters.create_and_wait(spark_version="15.4.x-scala2.12", instance_pool_id=pool_id)
    assert cluster.instance_pool_id == pool_id
    with pytest.raises(InvalidParameterValue, match="cannot be supplied"):
        w.clusters.create(
            spark_version="15.4.x-scala2.12", instance_pool_id=pool_id, node_type_id="local"
        )
    w.instance_pools.delete(pool_id)
    with pytest.raises(NotFound, match="Can't find an instance pool"):
        w.instance_pools.get(pool_id)


def _pool_job(pool_id: str) -> dict[str, Any]:
    return {
        "name": "pool-backed",
        "job_clusters": [
            jobs.JobCluster(
                job_cluster_key="main",
                new_cluster=compute.ClusterSpec(
                    spark_version="16.4.x-scala2.12",
                    instance_pool_id=pool_id,
                    driver_instance_pool_id=pool_id,
                    num_workers=2,
                ),
            )
        ],
        "tasks": [
            jobs.Task(
                task_key="t",
                job_cluster_key="main",
                notebook_task=jobs.NotebookTask(notebook_path=NB),
            )
        ],
    }


def test_a_pool_backed_job_runs_and_a_made_up_pool_is_refused(w) -> None:  # type: ignore[no-untyped-def]
    pool_id = w.instance_pools.create(instance_pool_name="p", node_type_id="local").instance_pool_id
    job_id = w.jobs.create(**_pool_job(pool_id)).job_id
    run = w.jobs.run_now(job_id).result()
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    with pytest.raises(InvalidParameterValue, match="Can't find an instance pool with id: 0727"):
        w.jobs.create(**_pool_job("0727-104344-hauls13-pool-uftxk0r6"))
    with pytest.raises(InvalidParameterValue, match="Can't find an instance pool"):
        w.clusters.create(spark_version="15.4.x-scala2.12", instance_pool_id="0727-nope")
    w.instance_pools.delete(pool_id)
    with pytest.raises(InvalidParameterValue):  # the job's pool is gone: reset is checked too
        w.jobs.reset(job_id, jobs.JobSettings(**_pool_job(pool_id)))


def test_policies_are_stored_and_applied(w) -> None:  # type: ignore[no-untyped-def]
    definition = json.dumps(
        {
            "spark_version": {"type": "fixed", "value": "15.4.x-scala2.12"},
            "autotermination_minutes": {"type": "range", "maxValue": 60, "defaultValue": 30},
            "custom_tags.team": {"type": "fixed", "value": "data"},
        }
    )
    policy_id = w.cluster_policies.create(name="small", definition=definition).policy_id
    policy = w.cluster_policies.get(policy_id)
    assert policy.name == "small" and policy.definition == definition and policy.creator_user_name
    with pytest.raises(ResourceAlreadyExists):
        w.cluster_policies.create(name="small")
    cluster = w.clusters.create_and_wait(
        policy_id=policy_id, apply_policy_default_values=True, spark_version="15.4.x-scala2.12"
    )
    assert cluster.autotermination_minutes == 30 and cluster.custom_tags == {"team": "data"}
    with pytest.raises(InvalidParameterValue, match="autotermination_minutes"):
        w.clusters.create(
            policy_id=policy_id, spark_version="15.4.x-scala2.12", autotermination_minutes=120
        )
    with pytest.raises(InvalidParameterValue, match="spark_version"):
        w.clusters.create(policy_id=policy_id, spark_version="16.4.x-scala2.12")
    w.cluster_policies.edit(policy_id, name="smaller", definition="{}")
    assert [p.name for p in w.cluster_policies.list()] == ["smaller"]
    w.cluster_policies.delete(policy_id)
    with pytest.raises(InvalidParameterValue, match="cluster policy"):
        w.clusters.create(policy_id=policy_id, spark_version="15.4.x-scala2.12")
    assert list(w.policy_families.list()) == []


def test_a_task_naming_an_unknown_environment_is_refused_at_create(w) -> None:  # type: ignore[no-untyped-def]
    environment = jobs.JobEnvironment(
        environment_key="default",
        spec=compute.Environment(environment_version="2", dependencies=["pandas"]),
    )
    task = jobs.Task(
        task_key="t", environment_key="other", notebook_task=jobs.NotebookTask(notebook_path=NB)
    )
    with pytest.raises(InvalidParameterValue, match="names environment other, which is not one"):
        w.jobs.create(name="serverless", environments=[environment], tasks=[task])
    task.environment_key = "default"
    assert w.jobs.create(name="serverless", environments=[environment], tasks=[task]).job_id
