"""Conformance of the local workspace with databricks-sdk's ``WorkspaceClient``: every
operation the SDK offers for the services a Databricks client calls first (identity, the
workspace tree, DBFS, jobs, clusters, pools, policies, secrets, permissions), called through
the SDK against a local workspace.

Each operation is in :data:`OPERATIONS` with what the local workspace does with it:
``supported`` (the call succeeds; its first response round-trips through the SDK dataclass it
is documented to return: no field the dataclass does not know, no required field missing),
``refused`` (the documented error code, with the reason) or ``not implemented`` (404
``ENDPOINT_NOT_FOUND``, with the reason). A service's public method that is not in the table
fails the suite, so an SDK upgrade that adds an operation is noticed.

The table of docs/supported-operations.md is made from the same rows: the suite fails when the
file is not what it makes; ``ORCH_WRITE_CONFORMANCE=1`` writes it.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import io
import os
import threading
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service import compute, files, iam, jobs, workspace

from orchestrator.local.server import LocalWorkspace
from tests.conftest import sdk_client

DOC = Path(__file__).resolve().parents[2] / "docs" / "supported-operations.md"
ME = "local@localhost"
NB = base64.b64encode(b"# Databricks notebook source\nprint(1)\n").decode()
V = "15.4.x-scala2.12"
SERVICES = (
    "current_user",
    "users",
    "groups",
    "service_principals",
    "workspace",
    "dbfs",
    "files",
    "jobs",
    "clusters",
    "instance_pools",
    "cluster_policies",
    "policy_families",
    "secrets",
    "permissions",
)


@dataclass
class Ctx:
    """Objects made before the operations run, named by the recipes."""

    w: Any
    notebook_id: str = ""
    job_id: int = 0
    run_id: int = 0
    task_run_id: int = 0
    cluster_id: str = ""
    pool_id: str = ""
    policy_id: str = ""
    user_id: str = ""
    group_id: str = ""
    scratch: Path = Path()


@dataclass(frozen=True)
class Op:
    service: str
    name: str
    call: Callable[[Ctx], Any]
    returns: type | None = None  # the dataclass of the first response
    outcome: str = "supported"  # supported | refused | not implemented
    code: str = ""  # the error code of a refusal
    note: str = ""


def _pool(c: Ctx) -> compute.CreateInstancePoolResponse:
    return c.w.instance_pools.create(instance_pool_name="p2", node_type_id="local")


VOL = "/Volumes/main/default/v"


def _local(c: Ctx) -> Path:
    local = c.scratch / "upload"
    local.write_bytes(b"from a file")
    return local


def _new_job(c: Ctx) -> int:
    task = jobs.Task(task_key="t", notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb"))
    return int(c.w.jobs.create(name="j", tasks=[task]).job_id)


def _new_cluster(c: Ctx) -> str:
    return str(c.w.clusters.create_and_wait(spark_version=V).cluster_id)


def _acl_request(level: Enum) -> iam.AccessControlRequest:
    return iam.AccessControlRequest(group_name="users", permission_level=level)  # type: ignore[arg-type]


SCIM_REFUSED = "principals are the workspace's settings: one user, users and admins"
NO_ZONES = "availability zones are AWS's; this workspace is on this machine"
NO_PASSWORDS = "password permissions are for AWS workspaces with password login"

OPERATIONS: tuple[Op, ...] = (
    # --- identity ---------------------------------------------------------------------------
    Op("current_user", "me", lambda c: c.w.current_user.me(), iam.User),
    Op("users", "list", lambda c: list(c.w.users.list()), iam.ListUsersResponse),
    Op("users", "get", lambda c: c.w.users.get(c.user_id), iam.User),
    Op(
        "users",
        "create",
        lambda c: c.w.users.create(user_name="x@y"),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "users",
        "update",
        lambda c: c.w.users.update(c.user_id, user_name=ME),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "users",
        "patch",
        lambda c: c.w.users.patch(c.user_id),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "users",
        "delete",
        lambda c: c.w.users.delete(c.user_id),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "users",
        "get_permission_levels",
        lambda c: c.w.users.get_permission_levels(),
        None,
        "not implemented",
        note=NO_PASSWORDS,
    ),
    Op(
        "users",
        "get_permissions",
        lambda c: c.w.users.get_permissions(),
        None,
        "not implemented",
        note=NO_PASSWORDS,
    ),
    Op(
        "users",
        "set_permissions",
        lambda c: c.w.users.set_permissions(),
        None,
        "not implemented",
        note=NO_PASSWORDS,
    ),
    Op(
        "users",
        "update_permissions",
        lambda c: c.w.users.update_permissions(),
        None,
        "not implemented",
        note=NO_PASSWORDS,
    ),
    Op("groups", "list", lambda c: list(c.w.groups.list()), iam.ListGroupsResponse),
    Op("groups", "get", lambda c: c.w.groups.get(c.group_id), iam.Group),
    Op(
        "groups",
        "create",
        lambda c: c.w.groups.create(display_name="g"),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "groups",
        "update",
        lambda c: c.w.groups.update(c.group_id),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "groups",
        "patch",
        lambda c: c.w.groups.patch(c.group_id),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "groups",
        "delete",
        lambda c: c.w.groups.delete(c.group_id),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "service_principals",
        "list",
        lambda c: list(c.w.service_principals.list()),
        iam.ListServicePrincipalResponse,
        note="lists the service principal when the token is configured as one",
    ),
    Op(
        "service_principals",
        "get",
        lambda c: c.w.service_principals.get("1"),
        None,
        "refused",
        "SCIM_404",
        "no service principal unless the token is configured as one",
    ),
    Op(
        "service_principals",
        "create",
        lambda c: c.w.service_principals.create(),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "service_principals",
        "update",
        lambda c: c.w.service_principals.update("1"),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "service_principals",
        "patch",
        lambda c: c.w.service_principals.patch("1"),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    Op(
        "service_principals",
        "delete",
        lambda c: c.w.service_principals.delete("1"),
        None,
        "refused",
        "SCIM_403",
        SCIM_REFUSED,
    ),
    # --- workspace ----------------------------------------------------------------------------
    Op("workspace", "mkdirs", lambda c: c.w.workspace.mkdirs("/Shared/d")),
    Op(
        "workspace",
        "import_",
        lambda c: c.w.workspace.import_(
            "/Shared/n", content=NB, language=workspace.Language.PYTHON, overwrite=True
        ),
    ),
    Op(
        "workspace",
        "upload",
        lambda c: c.w.workspace.upload(
            "/Shared/f.txt", io.BytesIO(b"x"), format=workspace.ImportFormat.AUTO, overwrite=True
        ),
    ),
    Op(
        "workspace",
        "export",
        lambda c: c.w.workspace.export("/Shared/nb"),
        workspace.ExportResponse,
    ),
    Op("workspace", "download", lambda c: c.w.workspace.download("/Shared/nb").read()),
    Op("workspace", "list", lambda c: list(c.w.workspace.list("/Shared")), workspace.ListResponse),
    Op(
        "workspace",
        "get_status",
        lambda c: c.w.workspace.get_status("/Shared/nb"),
        workspace.ObjectInfo,
    ),
    Op(
        "workspace",
        "delete",
        lambda c: c.w.workspace.delete("/Shared"),
        None,
        "refused",
        "DIRECTORY_PROTECTED",
        "/Shared, /Users and homes are protected, as on the service",
    ),
    Op(
        "workspace",
        "get_permission_levels",
        lambda c: c.w.workspace.get_permission_levels("notebooks", c.notebook_id),
        workspace.GetWorkspaceObjectPermissionLevelsResponse,
    ),
    Op(
        "workspace",
        "get_permissions",
        lambda c: c.w.workspace.get_permissions("notebooks", c.notebook_id),
        workspace.WorkspaceObjectPermissions,
    ),
    Op(
        "workspace",
        "set_permissions",
        lambda c: c.w.workspace.set_permissions("notebooks", c.notebook_id),
        workspace.WorkspaceObjectPermissions,
    ),
    Op(
        "workspace",
        "update_permissions",
        lambda c: c.w.workspace.update_permissions("notebooks", c.notebook_id),
        workspace.WorkspaceObjectPermissions,
    ),
    # --- DBFS ---------------------------------------------------------------------------------
    Op("dbfs", "mkdirs", lambda c: c.w.dbfs.mkdirs("/c")),
    Op("dbfs", "put", lambda c: c.w.dbfs.put("/c/a", contents=NB, overwrite=True)),
    Op(
        "dbfs",
        "create",
        lambda c: c.w.dbfs.create("/c/b", overwrite=True),
        __import__("databricks.sdk.service.files", fromlist=["CreateResponse"]).CreateResponse,
    ),
    Op(
        "dbfs",
        "add_block",
        lambda c: c.w.dbfs.add_block(c.w.dbfs.create("/c/e", overwrite=True).handle, NB),
    ),
    Op("dbfs", "close", lambda c: c.w.dbfs.close(c.w.dbfs.create("/c/f", overwrite=True).handle)),
    Op(
        "dbfs",
        "read",
        lambda c: c.w.dbfs.read("/c/a"),
        __import__("databricks.sdk.service.files", fromlist=["ReadResponse"]).ReadResponse,
    ),
    Op(
        "dbfs",
        "get_status",
        lambda c: c.w.dbfs.get_status("/c/a"),
        __import__("databricks.sdk.service.files", fromlist=["FileInfo"]).FileInfo,
    ),
    Op("dbfs", "list", lambda c: list(c.w.dbfs.list("/c"))),
    Op("dbfs", "move", lambda c: c.w.dbfs.move("/c/a", "/c/moved")),
    Op("dbfs", "move_", lambda c: c.w.dbfs.move_("/c/a", "/c/moved")),
    Op("dbfs", "copy", lambda c: c.w.dbfs.copy("/c/a", "/c/copy", overwrite=True)),
    Op("dbfs", "exists", lambda c: c.w.dbfs.exists("/c/a")),
    Op("dbfs", "upload", lambda c: c.w.dbfs.upload("/c/u", io.BytesIO(b"u"), overwrite=True)),
    Op("dbfs", "download", lambda c: c.w.dbfs.download("/c/a").read()),
    Op("dbfs", "open", lambda c: c.w.dbfs.open("/c/a", read=True).read()),
    Op("dbfs", "delete", lambda c: c.w.dbfs.delete("/c/copy")),
    # --- Files API (Unity Catalog volumes) ----------------------------------------------------
    Op("files", "upload", lambda c: c.w.files.upload(f"{VOL}/u", io.BytesIO(b"u"))),
    Op("files", "upload_from", lambda c: c.w.files.upload_from(f"{VOL}/uf", str(_local(c)))),
    Op("files", "download", lambda c: c.w.files.download(f"{VOL}/a").contents.read()),
    Op("files", "download_to", lambda c: c.w.files.download_to(f"{VOL}/a", str(c.scratch / "d"))),
    Op("files", "get_metadata", lambda c: c.w.files.get_metadata(f"{VOL}/a")),
    Op("files", "delete", lambda c: c.w.files.delete(f"{VOL}/a")),
    Op("files", "create_directory", lambda c: c.w.files.create_directory(f"{VOL}/d/e")),
    Op("files", "get_directory_metadata", lambda c: c.w.files.get_directory_metadata(VOL)),
    Op(
        "files",
        "list_directory_contents",
        lambda c: list(c.w.files.list_directory_contents(VOL)),
        files.ListDirectoryResponse,
    ),
    Op("files", "delete_directory", lambda c: c.w.files.delete_directory(f"{VOL}/empty")),
    # --- jobs ---------------------------------------------------------------------------------
    Op("jobs", "create", lambda c: _new_job(c)),
    Op("jobs", "get", lambda c: c.w.jobs.get(c.job_id), jobs.Job),
    Op("jobs", "list", lambda c: list(c.w.jobs.list(expand_tasks=True)), jobs.ListJobsResponse),
    Op("jobs", "reset", lambda c: c.w.jobs.reset(c.job_id, c.w.jobs.get(c.job_id).settings)),
    Op(
        "jobs",
        "update",
        lambda c: c.w.jobs.update(c.job_id, new_settings=jobs.JobSettings(description="d")),
    ),
    Op("jobs", "delete", lambda c: c.w.jobs.delete(_new_job(c))),
    Op("jobs", "run_now", lambda c: c.w.jobs.run_now(c.job_id).result(), jobs.RunNowResponse),
    Op(
        "jobs",
        "run_now_and_wait",
        lambda c: c.w.jobs.run_now_and_wait(c.job_id),
        jobs.RunNowResponse,
    ),
    Op(
        "jobs",
        "submit",
        lambda c: c.w.jobs.submit(
            run_name="s",
            tasks=[
                jobs.SubmitTask(
                    task_key="t", notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb")
                )
            ],
        ).result(),
        jobs.SubmitRunResponse,
    ),
    Op(
        "jobs",
        "submit_and_wait",
        lambda c: c.w.jobs.submit_and_wait(
            run_name="s",
            tasks=[
                jobs.SubmitTask(
                    task_key="t", notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb")
                )
            ],
        ),
        jobs.SubmitRunResponse,
    ),
    Op("jobs", "get_run", lambda c: c.w.jobs.get_run(c.run_id, include_history=True), jobs.Run),
    Op(
        "jobs",
        "list_runs",
        lambda c: list(c.w.jobs.list_runs(job_id=c.job_id)),
        jobs.ListRunsResponse,
    ),
    Op("jobs", "get_run_output", lambda c: c.w.jobs.get_run_output(c.task_run_id), jobs.RunOutput),
    Op("jobs", "export_run", lambda c: c.w.jobs.export_run(c.task_run_id), jobs.ExportRunOutput),
    Op("jobs", "cancel_run", lambda c: c.w.jobs.cancel_run(c.run_id).result()),
    Op("jobs", "cancel_run_and_wait", lambda c: c.w.jobs.cancel_run_and_wait(c.run_id)),
    Op("jobs", "cancel_all_runs", lambda c: c.w.jobs.cancel_all_runs(job_id=c.job_id)),
    Op(
        "jobs",
        "wait_get_run_job_terminated_or_skipped",
        lambda c: c.w.jobs.wait_get_run_job_terminated_or_skipped(c.run_id),
        jobs.Run,
    ),
    Op(
        "jobs",
        "repair_run",
        lambda c: c.w.jobs.repair_run(c.run_id, rerun_tasks=["t"]).result(),
        jobs.RepairRunResponse,
    ),
    Op(
        "jobs",
        "repair_run_and_wait",
        lambda c: c.w.jobs.repair_run_and_wait(
            c.run_id, rerun_all_failed_tasks=False, rerun_tasks=["t"]
        ),
        jobs.RepairRunResponse,
    ),
    Op(
        "jobs",
        "delete_run",
        lambda c: c.w.jobs.delete_run(c.w.jobs.run_now(c.job_id).result().run_id),
    ),
    Op(
        "jobs",
        "get_permission_levels",
        lambda c: c.w.jobs.get_permission_levels(str(c.job_id)),
        jobs.GetJobPermissionLevelsResponse,
    ),
    Op(
        "jobs",
        "get_permissions",
        lambda c: c.w.jobs.get_permissions(str(c.job_id)),
        jobs.JobPermissions,
    ),
    Op(
        "jobs",
        "set_permissions",
        lambda c: c.w.jobs.set_permissions(str(c.job_id)),
        jobs.JobPermissions,
    ),
    Op(
        "jobs",
        "update_permissions",
        lambda c: c.w.jobs.update_permissions(str(c.job_id)),
        jobs.JobPermissions,
    ),
    # --- clusters -----------------------------------------------------------------------------
    Op(
        "clusters",
        "spark_versions",
        lambda c: c.w.clusters.spark_versions(),
        compute.GetSparkVersionsResponse,
    ),
    Op(
        "clusters",
        "select_spark_version",
        lambda c: c.w.clusters.select_spark_version(latest=True, long_term_support=True),
        compute.GetSparkVersionsResponse,
    ),
    Op(
        "clusters",
        "list_node_types",
        lambda c: c.w.clusters.list_node_types(),
        compute.ListNodeTypesResponse,
    ),
    Op(
        "clusters",
        "select_node_type",
        lambda c: c.w.clusters.select_node_type(local_disk=True),
        compute.ListNodeTypesResponse,
    ),
    Op(
        "clusters",
        "list_zones",
        lambda c: c.w.clusters.list_zones(),
        None,
        "not implemented",
        note=NO_ZONES,
    ),
    Op(
        "clusters",
        "create",
        lambda c: c.w.clusters.create(spark_version=V).result(),
        compute.CreateClusterResponse,
    ),
    Op(
        "clusters",
        "create_and_wait",
        lambda c: c.w.clusters.create_and_wait(spark_version=V),
        compute.CreateClusterResponse,
    ),
    Op("clusters", "get", lambda c: c.w.clusters.get(c.cluster_id), compute.ClusterDetails),
    Op("clusters", "list", lambda c: list(c.w.clusters.list()), compute.ListClustersResponse),
    Op("clusters", "edit", lambda c: c.w.clusters.edit(c.cluster_id, spark_version=V).result()),
    Op(
        "clusters",
        "edit_and_wait",
        lambda c: c.w.clusters.edit_and_wait(c.cluster_id, spark_version=V, num_workers=1),
    ),
    Op(
        "clusters",
        "update",
        lambda c: c.w.clusters.update(
            c.cluster_id, "num_workers", cluster=compute.UpdateClusterResource(num_workers=2)
        ).result(),
    ),
    Op(
        "clusters",
        "update_and_wait",
        lambda c: c.w.clusters.update_and_wait(
            c.cluster_id, "num_workers", cluster=compute.UpdateClusterResource(num_workers=3)
        ),
    ),
    Op("clusters", "resize", lambda c: c.w.clusters.resize(c.cluster_id, num_workers=1).result()),
    Op(
        "clusters",
        "resize_and_wait",
        lambda c: c.w.clusters.resize_and_wait(c.cluster_id, num_workers=2),
    ),
    Op("clusters", "restart", lambda c: c.w.clusters.restart(c.cluster_id).result()),
    Op("clusters", "restart_and_wait", lambda c: c.w.clusters.restart_and_wait(c.cluster_id)),
    Op(
        "clusters",
        "wait_get_cluster_running",
        lambda c: c.w.clusters.wait_get_cluster_running(c.cluster_id),
        compute.ClusterDetails,
    ),
    Op(
        "clusters",
        "ensure_cluster_is_running",
        lambda c: c.w.clusters.ensure_cluster_is_running(c.cluster_id),
    ),
    Op("clusters", "pin", lambda c: c.w.clusters.pin(c.cluster_id)),
    Op("clusters", "unpin", lambda c: c.w.clusters.unpin(c.cluster_id)),
    Op("clusters", "change_owner", lambda c: c.w.clusters.change_owner(c.cluster_id, ME)),
    Op(
        "clusters",
        "events",
        lambda c: list(c.w.clusters.events(c.cluster_id)),
        compute.GetEventsResponse,
    ),
    Op("clusters", "delete", lambda c: c.w.clusters.delete(_new_cluster(c)).result()),
    Op("clusters", "delete_and_wait", lambda c: c.w.clusters.delete_and_wait(_new_cluster(c))),
    Op(
        "clusters",
        "wait_get_cluster_terminated",
        lambda c: c.w.clusters.wait_get_cluster_terminated(
            c.w.clusters.delete(_new_cluster(c)).cluster_id
        ),
        compute.ClusterDetails,
    ),
    Op(
        "clusters",
        "start",
        lambda c: c.w.clusters.start(
            c.w.clusters.delete(_new_cluster(c)).result().cluster_id
        ).result(),
    ),
    Op(
        "clusters",
        "start_and_wait",
        lambda c: c.w.clusters.start_and_wait(
            c.w.clusters.delete(_new_cluster(c)).result().cluster_id
        ),
    ),
    Op("clusters", "permanent_delete", lambda c: c.w.clusters.permanent_delete(_new_cluster(c))),
    Op(
        "clusters",
        "get_permission_levels",
        lambda c: c.w.clusters.get_permission_levels(c.cluster_id),
        compute.GetClusterPermissionLevelsResponse,
    ),
    Op(
        "clusters",
        "get_permissions",
        lambda c: c.w.clusters.get_permissions(c.cluster_id),
        compute.ClusterPermissions,
    ),
    Op(
        "clusters",
        "set_permissions",
        lambda c: c.w.clusters.set_permissions(c.cluster_id),
        compute.ClusterPermissions,
    ),
    Op(
        "clusters",
        "update_permissions",
        lambda c: c.w.clusters.update_permissions(c.cluster_id),
        compute.ClusterPermissions,
    ),
    # --- instance pools and policies ----------------------------------------------------------
    Op("instance_pools", "create", _pool, compute.CreateInstancePoolResponse),
    Op(
        "instance_pools",
        "get",
        lambda c: c.w.instance_pools.get(c.pool_id),
        compute.GetInstancePool,
    ),
    Op(
        "instance_pools",
        "list",
        lambda c: list(c.w.instance_pools.list()),
        compute.ListInstancePools,
    ),
    Op(
        "instance_pools",
        "edit",
        lambda c: c.w.instance_pools.edit(c.pool_id, instance_pool_name="p3", node_type_id="local"),
    ),
    Op("instance_pools", "delete", lambda c: c.w.instance_pools.delete(_pool(c).instance_pool_id)),
    Op(
        "instance_pools",
        "get_permission_levels",
        lambda c: c.w.instance_pools.get_permission_levels(c.pool_id),
        compute.GetInstancePoolPermissionLevelsResponse,
    ),
    Op(
        "instance_pools",
        "get_permissions",
        lambda c: c.w.instance_pools.get_permissions(c.pool_id),
        compute.InstancePoolPermissions,
    ),
    Op(
        "instance_pools",
        "set_permissions",
        lambda c: c.w.instance_pools.set_permissions(c.pool_id),
        compute.InstancePoolPermissions,
    ),
    Op(
        "instance_pools",
        "update_permissions",
        lambda c: c.w.instance_pools.update_permissions(c.pool_id),
        compute.InstancePoolPermissions,
    ),
    Op(
        "cluster_policies",
        "create",
        lambda c: c.w.cluster_policies.create(name="p2"),
        compute.CreatePolicyResponse,
    ),
    Op("cluster_policies", "get", lambda c: c.w.cluster_policies.get(c.policy_id), compute.Policy),
    Op(
        "cluster_policies",
        "list",
        lambda c: list(c.w.cluster_policies.list()),
        compute.ListPoliciesResponse,
    ),
    Op("cluster_policies", "edit", lambda c: c.w.cluster_policies.edit(c.policy_id, name="p")),
    Op(
        "cluster_policies",
        "delete",
        lambda c: c.w.cluster_policies.delete(c.w.cluster_policies.create(name="gone").policy_id),
    ),
    Op(
        "cluster_policies",
        "get_permission_levels",
        lambda c: c.w.cluster_policies.get_permission_levels(c.policy_id),
        compute.GetClusterPolicyPermissionLevelsResponse,
    ),
    Op(
        "cluster_policies",
        "get_permissions",
        lambda c: c.w.cluster_policies.get_permissions(c.policy_id),
        compute.ClusterPolicyPermissions,
    ),
    Op(
        "cluster_policies",
        "set_permissions",
        lambda c: c.w.cluster_policies.set_permissions(c.policy_id),
        compute.ClusterPolicyPermissions,
    ),
    Op(
        "cluster_policies",
        "update_permissions",
        lambda c: c.w.cluster_policies.update_permissions(c.policy_id),
        compute.ClusterPolicyPermissions,
    ),
    Op(
        "policy_families",
        "list",
        lambda c: list(c.w.policy_families.list()),
        compute.ListPolicyFamiliesResponse,
        note="this workspace has no policy families",
    ),
    Op(
        "policy_families",
        "get",
        lambda c: c.w.policy_families.get("personal-vm"),
        None,
        "refused",
        "RESOURCE_DOES_NOT_EXIST",
        "this workspace has no policy families",
    ),
    # --- secrets ------------------------------------------------------------------------------
    Op("secrets", "create_scope", lambda c: c.w.secrets.create_scope("s3")),
    Op(
        "secrets",
        "list_scopes",
        lambda c: list(c.w.secrets.list_scopes()),
        workspace.ListScopesResponse,
    ),
    Op("secrets", "put_secret", lambda c: c.w.secrets.put_secret("s", "k", string_value="v")),
    Op(
        "secrets",
        "list_secrets",
        lambda c: list(c.w.secrets.list_secrets("s")),
        workspace.ListSecretsResponse,
    ),
    Op(
        "secrets",
        "get_secret",
        lambda c: c.w.secrets.get_secret("s", "k"),
        workspace.GetSecretResponse,
    ),
    Op(
        "secrets",
        "put_acl",
        lambda c: c.w.secrets.put_acl("s", "users", workspace.AclPermission.READ),
    ),
    Op("secrets", "get_acl", lambda c: c.w.secrets.get_acl("s", ME), workspace.AclItem),
    Op(
        "secrets",
        "list_acls",
        lambda c: list(c.w.secrets.list_acls("s")),
        workspace.ListAclsResponse,
    ),
    Op("secrets", "delete_acl", lambda c: c.w.secrets.delete_acl("s", "users")),
    Op("secrets", "delete_secret", lambda c: c.w.secrets.delete_secret("s", "k")),
    Op("secrets", "delete_scope", lambda c: c.w.secrets.delete_scope("s2")),
    # --- permissions --------------------------------------------------------------------------
    Op(
        "permissions",
        "get",
        lambda c: c.w.permissions.get("jobs", str(c.job_id)),
        iam.ObjectPermissions,
        note="directories, notebooks, jobs, clusters, instance-pools, cluster-policies",
    ),
    Op(
        "permissions",
        "get_permission_levels",
        lambda c: c.w.permissions.get_permission_levels("directories", "0"),
        iam.GetPermissionLevelsResponse,
    ),
    Op(
        "permissions",
        "set",
        lambda c: c.w.permissions.set(
            "notebooks",
            c.notebook_id,
            access_control_list=[_acl_request(iam.PermissionLevel.CAN_READ)],
        ),
        iam.ObjectPermissions,
    ),
    Op(
        "permissions",
        "update",
        lambda c: c.w.permissions.update(
            "notebooks",
            c.notebook_id,
            access_control_list=[_acl_request(iam.PermissionLevel.CAN_RUN)],
        ),
        iam.ObjectPermissions,
    ),
)


class Recorder:
    """Keeps every JSON answer the SDK's API client gets (a spy on the real client: the
    requests still go to the local workspace)."""

    def __init__(self, client: Any) -> None:
        self.answers: list[Any] = []
        api = client.api_client
        real = api.do

        def do(*args: Any, **kwargs: Any) -> Any:
            answer = real(*args, **kwargs)
            self.answers.append(answer)
            return answer

        api.do = do


@pytest.fixture
def ctx(ws: LocalWorkspace) -> Iterator[Ctx]:
    w = sdk_client(ws)
    w.workspace.import_("/Shared/nb", content=NB, language=workspace.Language.PYTHON)
    c = Ctx(w)
    c.notebook_id = str(w.workspace.get_status("/Shared/nb").object_id)
    c.job_id = _new_job(c)
    # made without the SDK's waiters, whose first poll sleeps a second: the workspace's own
    # waits end as soon as the run has ended and the cluster runs
    c.run_id = int(w.jobs.run_now(c.job_id).response.run_id)
    assert ws.scheduler.wait_idle(c.run_id, 60)
    c.task_run_id = int(w.jobs.get_run(c.run_id).tasks[0].run_id)
    c.cluster_id = str(w.clusters.create(spark_version=V).response.cluster_id)
    assert ws.clusters.wait_running(c.cluster_id, threading.Event())
    c.pool_id = _pool(c).instance_pool_id
    c.policy_id = w.cluster_policies.create(name="p").policy_id
    c.user_id = str(w.current_user.me().id)
    c.group_id = str(next(iter(w.groups.list())).id)
    w.secrets.create_scope("s")
    w.secrets.put_secret("s", "k", string_value="v")
    w.secrets.put_acl("s", "users", workspace.AclPermission.READ)
    w.secrets.create_scope("s2")
    w.dbfs.mkdirs("/c")
    w.dbfs.put("/c/a", contents=NB)
    # a volume exists here when its folder does (no Unity Catalog: the SDK's dbfs.mkdirs of a
    # /Volumes path goes to the Files API, which needs the volume), as local.dbfs makes it
    (ws.store.dbfs_root / VOL.lstrip("/") / "empty").mkdir(parents=True)
    w.files.upload(VOL + "/a", io.BytesIO(b"a"))
    c.scratch = Path(ws.store.state_dir).parent / "conformance-scratch"
    c.scratch.mkdir(exist_ok=True)
    _executed(ws, c.task_run_id)  # the fake executor runs no kernel: what one leaves behind
    yield c


def _executed(ws: LocalWorkspace, task_run_id: int) -> None:
    import nbformat

    from orchestrator.local.state.retention import EXECUTED_NOTEBOOK

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    target = ws.store.runs_root / str(task_run_id) / EXECUTED_NOTEBOOK
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(nbformat.writes(notebook), encoding="utf-8")


def _problems(cls: type, raw: Any, where: str = "") -> list[str]:
    """What keeps ``raw`` from round-tripping through ``cls``: unknown fields, missing
    required fields (recursively), and any difference after ``from_dict``/``as_dict``."""
    if not isinstance(raw, dict):
        return [f"{where or cls.__name__}: not an object"]
    found: list[str] = []
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    wire = {_wire_name(cls, name): name for name in fields}
    for key in raw:
        if key not in wire:
            found.append(f"{where}{key}: not a field of {cls.__name__}")
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and _wire_name(cls, name) not in raw:
            found.append(f"{where}{name}: required by {cls.__name__}, missing")
    hints = typing.get_type_hints(cls)
    for key, value in raw.items():
        if key not in wire:
            continue
        inner = _dataclass_of(hints[wire[key]])
        if inner is None:
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            found += _problems(inner, item, f"{where}{key}[{i}].")
    if not found and cls.from_dict(raw).as_dict() != raw:  # type: ignore[attr-defined]
        found.append(f"{where}{cls.__name__}: does not round-trip: {raw}")
    return found


def _wire_name(cls: type, name: str) -> str:
    """The JSON name of a field (``resources`` is ``Resources``, ``ref`` is ``$ref``...)."""
    source = inspect.getsource(cls.as_dict)  # type: ignore[attr-defined]
    marker = f"self.{name} "
    for line in source.splitlines():
        if "body[" in line and f"self.{name}" in line and marker.strip() in line:
            start = line.index('body["') + len('body["')
            return line[start : line.index('"', start)]
    return name


def _dataclass_of(hint: Any) -> type | None:
    for arg in (hint, *typing.get_args(hint)):
        for inner in (arg, *typing.get_args(arg)):
            if dataclasses.is_dataclass(inner):
                return inner  # type: ignore[return-value]
    return None


def _public(service: Any) -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(type(service), inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_operation_of_these_services_is_in_the_table(ws: LocalWorkspace) -> None:
    w = sdk_client(ws)
    listed = {(op.service, op.name) for op in OPERATIONS}
    offered = {(s, name) for s in SERVICES for name in _public(getattr(w, s))}
    assert offered - listed == set(), "operations of the SDK the table does not name"
    assert listed - offered == set(), "operations the SDK does not offer"


@pytest.mark.parametrize("op", OPERATIONS, ids=[f"{op.service}.{op.name}" for op in OPERATIONS])
def test_operation(ctx: Ctx, op: Op) -> None:
    recorder = Recorder(ctx.w)
    if op.outcome == "supported":
        op.call(ctx)
        if op.returns is not None:
            assert recorder.answers, "no JSON answer was recorded"
            assert _problems(op.returns, recorder.answers[0]) == []
        return
    with pytest.raises(DatabricksError) as caught:
        op.call(ctx)
    if op.outcome == "not implemented":
        assert caught.value.error_code == "ENDPOINT_NOT_FOUND", caught.value
    else:
        code = caught.value.error_code or type(caught.value).__name__.upper()
        names = {op.code, op.code.replace("_", "")}
        assert code in names or caught.value.error_code == op.code, (code, caught.value)


def render() -> str:
    counts = {
        k: sum(1 for op in OPERATIONS if op.outcome == k)
        for k in ("supported", "refused", "not implemented")
    }
    lines = [
        "# Supported operations",
        "",
        "Generated by tests/local/test_conformance.py (`ORCH_WRITE_CONFORMANCE=1` writes it; the",
        "suite fails when this file is not what it makes). Every operation databricks-sdk's",
        "`WorkspaceClient` offers for these services is called through the SDK against a local",
        "workspace: *supported* calls succeed and their response round-trips through the SDK's",
        "dataclass; *refused* ones answer the documented error code, for the reason given;",
        "*not implemented* ones answer 404 `ENDPOINT_NOT_FOUND`. Behaviour in detail is in",
        "[local-workspace.md](local-workspace.md).",
        "",
        f"{len(OPERATIONS)} operations: {counts['supported']} supported, {counts['refused']} "
        f"refused, {counts['not implemented']} not implemented.",
        "",
        "| service | operation | local workspace | note |",
        "|---|---|---|---|",
    ]
    for op in OPERATIONS:
        status = op.outcome if op.outcome != "refused" else f"refused (`{op.code}`)"
        lines.append(f"| {op.service} | `{op.name}` | {status} | {op.note} |")
    return "\n".join(lines) + "\n"


def test_the_table_in_docs_is_the_suites() -> None:
    text = render()
    if os.environ.get("ORCH_WRITE_CONFORMANCE") == "1":
        DOC.write_text(text, encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == text, "run with ORCH_WRITE_CONFORMANCE=1"
