"""Who the caller is and what the workspace grants, through databricks-sdk: SCIM ``Me`` (the
workspace's one user), the folders a new workspace has, and the Permissions API of folders and
notebooks (inherited grants, PUT replaces, PATCH adds or changes, levels). Bad requests and
the state they leave alone are in tests/local/test_bad_input.py."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import requests
from databricks.sdk.errors import NotFound
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.service import iam, jobs, workspace

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from tests.conftest import TOKEN, sdk_client
from tests.fakes import FakeExecutor

ME = "local@localhost"
NB = base64.b64encode(b"# Databricks notebook source\nprint(1)\n").decode()


@pytest.fixture
def w(ws: LocalWorkspace):  # type: ignore[no-untyped-def]
    return sdk_client(ws)


def acl(perms: Any) -> dict[str, list[tuple[str, bool, list[str]]]]:
    """``{principal: [(level, inherited, inherited_from_object), ...]}`` of an answer."""
    out: dict[str, list[tuple[str, bool, list[str]]]] = {}
    for entry in perms.access_control_list or []:
        name = entry.user_name or entry.group_name or entry.service_principal_name
        out[name] = [
            (p.permission_level.value, bool(p.inherited), list(p.inherited_from_object or []))
            for p in entry.all_permissions or []
        ]
    return out


def object_id(w: Any, path: str) -> str:
    return str(w.workspace.get_status(path).object_id)


def test_me_is_the_workspaces_one_user(w) -> None:  # type: ignore[no-untyped-def]
    me = w.current_user.me()
    assert me.user_name == ME and me.active is True
    assert me.id and me.id.isdigit() and me.display_name == "local"
    assert [e.value for e in me.emails or []] == [ME]
    assert sorted(g.display for g in me.groups or []) == ["admins", "users"]
    assert set(me.schemas or []) == {
        iam.UserSchema.URN_IETF_PARAMS_SCIM_SCHEMAS_CORE_2_0_USER,
        iam.UserSchema.URN_IETF_PARAMS_SCIM_SCHEMAS_EXTENSION_WORKSPACE_2_0_USER,
    }
    assert w.current_user.me().id == me.id  # stable
    narrowed = w.current_user.me(attributes="userName")
    assert narrowed.user_name == ME and not narrowed.groups and narrowed.id == me.id
    without = w.current_user.me(excluded_attributes="groups,emails")
    assert not without.emails and not without.groups and without.user_name == ME


def test_a_new_workspace_has_users_the_home_and_shared(w) -> None:  # type: ignore[no-untyped-def]
    top = {o.path: o.object_type for o in w.workspace.list("/")}
    assert top == {
        "/Users": workspace.ObjectType.DIRECTORY,
        "/Shared": workspace.ObjectType.DIRECTORY,
    }
    assert [o.path for o in w.workspace.list("/Users")] == [f"/Users/{ME}"]
    # the home is usable as on the service: a client writes below it at once
    w.workspace.mkdirs(f"/Users/{ME}/.bundle/x")


def test_jobs_and_runs_name_the_user_as_their_creator(w) -> None:  # type: ignore[no-untyped-def]
    task = jobs.Task(task_key="a", notebook_task=jobs.NotebookTask(notebook_path=f"/Users/{ME}/nb"))
    created = w.jobs.create(name="mine", tasks=[task])
    job = w.jobs.get(created.job_id)
    assert job.creator_user_name == ME and job.run_as_user_name == ME
    run = w.jobs.run_now(created.job_id).result()
    assert run.creator_user_name == ME


def test_the_user_name_is_a_setting_of_the_workspace(tmp_path: Path) -> None:
    with start_local_workspace(
        tmp_path / "state", token=TOKEN, executor=FakeExecutor(), user_name="ana@example.com"
    ) as ws:
        w = sdk_client(ws)
        assert w.current_user.me().user_name == "ana@example.com"
        assert [o.path for o in w.workspace.list("/Users")] == ["/Users/ana@example.com"]
        home = object_id(w, "/Users/ana@example.com")
        perms = w.workspace.get_permissions("directories", home)
        assert acl(perms)["ana@example.com"] == [("CAN_MANAGE", False, [])]
    for bad in ("", "a/b", "..", "tab\there"):
        with pytest.raises(ValueError, match="not a user name"):
            start_local_workspace(tmp_path / "bad", executor=FakeExecutor(), user_name=bad)


def test_built_in_grants_are_inherited_down_the_tree(w) -> None:  # type: ignore[no-untyped-def]
    w.workspace.mkdirs("/Shared/team/deep")
    w.workspace.import_("/Shared/team/deep/nb", content=NB, language=workspace.Language.PYTHON)
    root, shared, team, deep = (
        object_id(w, p) for p in ("/", "/Shared", "/Shared/team", "/Shared/team/deep")
    )
    assert root == "0"
    admins = ("CAN_MANAGE", True, ["/directories/"])
    users = ("CAN_MANAGE", True, [f"/directories/{shared}"])

    at_root = w.permissions.get("directories", root)
    assert (at_root.object_id, at_root.object_type) == ("/directories/", "directory")
    assert acl(at_root) == {"admins": [("CAN_MANAGE", False, [])]}
    assert acl(w.permissions.get("directories", shared)) == {
        "admins": [admins],
        "users": [("CAN_MANAGE", False, [])],
    }
    assert acl(w.permissions.get("directories", deep)) == {"admins": [admins], "users": [users]}
    nb = w.workspace.get_permissions("notebooks", object_id(w, "/Shared/team/deep/nb"))
    assert nb.object_id == f"/notebooks/{object_id(w, '/Shared/team/deep/nb')}"
    assert nb.object_type == "notebook"
    assert acl(nb) == {"admins": [admins], "users": [users]}
    home = object_id(w, f"/Users/{ME}")
    home_acl = w.workspace.get_permissions("directories", home)
    assert acl(home_acl) == {"admins": [admins], ME: [("CAN_MANAGE", False, [])]}
    (mine,) = [e for e in home_acl.access_control_list if e.user_name == ME]
    assert mine.display_name == "local"
    # and what a folder grants reaches what is below it, from every folder on the way
    w.permissions.update(
        "directories",
        team,
        access_control_list=[
            iam.AccessControlRequest(
                group_name="users", permission_level=iam.PermissionLevel.CAN_MANAGE
            ),
            iam.AccessControlRequest(user_name=ME, permission_level=iam.PermissionLevel.CAN_RUN),
        ],
    )
    below = acl(w.permissions.get("notebooks", object_id(w, "/Shared/team/deep/nb")))
    assert below["users"] == [
        ("CAN_MANAGE", True, [f"/directories/{shared}", f"/directories/{team}"])
    ]
    assert below[ME] == [("CAN_RUN", True, [f"/directories/{team}"])]


def test_put_replaces_and_patch_adds_or_changes_direct_grants(w) -> None:  # type: ignore[no-untyped-def]
    w.workspace.mkdirs(f"/Users/{ME}/proj")
    proj = object_id(w, f"/Users/{ME}/proj")
    home = object_id(w, f"/Users/{ME}")
    read = iam.AccessControlRequest(
        group_name="users", permission_level=iam.PermissionLevel.CAN_READ
    )
    answer = w.permissions.set("directories", proj, access_control_list=[read])
    assert acl(answer)["users"] == [("CAN_READ", False, [])]
    assert acl(answer)[ME] == [("CAN_MANAGE", True, [f"/directories/{home}"])]
    # PATCH changes the group's level and adds the user's own, keeping the group
    answer = w.permissions.update(
        "directories",
        proj,
        access_control_list=[
            iam.AccessControlRequest(
                group_name="users", permission_level=iam.PermissionLevel.CAN_EDIT
            ),
            iam.AccessControlRequest(user_name=ME, permission_level=iam.PermissionLevel.CAN_RUN),
        ],
    )
    assert acl(answer)["users"] == [("CAN_EDIT", False, [])]
    assert acl(answer)[ME] == [
        ("CAN_MANAGE", True, [f"/directories/{home}"]),
        ("CAN_RUN", False, []),
    ]
    assert acl(w.permissions.get("directories", proj)) == acl(answer)  # kept
    # the same principal twice in one request: the highest level stays (as the service does)
    answer = w.workspace.set_permissions(
        "directories",
        proj,
        access_control_list=[
            workspace.WorkspaceObjectAccessControlRequest(
                group_name="users",
                permission_level=workspace.WorkspaceObjectPermissionLevel.CAN_EDIT,
            ),
            workspace.WorkspaceObjectAccessControlRequest(
                group_name="users",
                permission_level=workspace.WorkspaceObjectPermissionLevel.CAN_READ,
            ),
        ],
    )
    assert acl(answer)["users"] == [("CAN_EDIT", False, [])]
    assert [p for p in acl(answer)[ME] if not p[1]] == []  # PUT dropped the user's direct one
    # PUT with nothing removes every direct grant; the inherited ones stay
    answer = w.permissions.set("directories", proj, access_control_list=[])
    assert "users" not in acl(answer) and acl(answer)[ME][0][1] is True


def test_grants_survive_a_restart_and_go_with_their_object(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with start_local_workspace(state, token=TOKEN, executor=FakeExecutor()) as ws:
        w = sdk_client(ws)
        w.workspace.mkdirs("/Users/local@localhost/keep/sub")
        keep = object_id(w, "/Users/local@localhost/keep")
        sub = object_id(w, "/Users/local@localhost/keep/sub")
        level = iam.PermissionLevel.CAN_READ
        for folder in (keep, sub):
            w.permissions.set(
                "directories",
                folder,
                access_control_list=[
                    iam.AccessControlRequest(group_name="users", permission_level=level)
                ],
            )
    with start_local_workspace(state, token=TOKEN, executor=FakeExecutor()) as ws:
        w = sdk_client(ws)
        assert acl(w.permissions.get("directories", keep))["users"] == [("CAN_READ", False, [])]
        w.workspace.delete("/Users/local@localhost/keep", recursive=True)
        with pytest.raises(NotFound):
            w.permissions.get("directories", sub)
        rows = ws.store._db.execute("SELECT COUNT(*) FROM grants").fetchone()  # private: the table
        assert rows == (0,)


def test_permission_levels_of_folders_and_notebooks(w) -> None:  # type: ignore[no-untyped-def]
    w.workspace.import_("/Shared/nb", content=NB, language=workspace.Language.PYTHON)
    for kind, path in (("directories", "/Shared"), ("notebooks", "/Shared/nb")):
        levels = w.permissions.get_permission_levels(kind, object_id(w, path)).permission_levels
        assert [lv.permission_level.value for lv in levels] == [
            "CAN_READ",
            "CAN_RUN",
            "CAN_EDIT",
            "CAN_MANAGE",
        ]
        assert all(lv.description for lv in levels)
    via_workspace = w.workspace.get_permission_levels("notebooks", object_id(w, "/Shared/nb"))
    assert len(via_workspace.permission_levels) == 4


def test_what_the_service_refuses_is_refused(w) -> None:  # type: ignore[no-untyped-def]
    w.workspace.mkdirs("/Shared/x")
    w.workspace.import_("/Shared/x/nb", content=NB, language=workspace.Language.PYTHON)
    x, nb = object_id(w, "/Shared/x"), object_id(w, "/Shared/x/nb")

    def refused(kind: str, ident: str, **entry: Any) -> DatabricksError:
        with pytest.raises(DatabricksError) as info:
            w.permissions.update(
                kind, ident, access_control_list=[iam.AccessControlRequest(**entry)]
            )
        return info.value

    read = iam.PermissionLevel.CAN_READ
    error = refused(
        "directories", x, group_name="users", permission_level=iam.PermissionLevel.CAN_RESTART
    )
    assert error.error_code == "INVALID_PARAMETER_VALUE" and "CAN_RESTART" in str(error)
    error = refused("directories", x, user_name="bob@example.com", permission_level=read)
    assert str(error) == "Principal: UserName(bob@example.com) does not exist"
    error = refused("notebooks", nb, group_name="data-eng", permission_level=read)
    assert str(error) == "Principal: GroupName(data-eng) does not exist"
    error = refused("notebooks", nb, service_principal_name="app-1", permission_level=read)
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    error = refused("directories", x, group_name="admins", permission_level=read)
    assert str(error) == f"Cannot remove admins's CAN_MANAGE permission on {x}"
    error = refused(
        "directories", object_id(w, "/Shared"), group_name="users", permission_level=read
    )
    assert error.error_code == "INTERNAL_ERROR"
    assert str(error) == f"Cannot modify permissions of directory {object_id(w, '/Shared')}"
    with pytest.raises(NotFound):
        w.permissions.get("directories", nb)  # a notebook is not a folder
    with pytest.raises(NotFound):
        w.permissions.get("notebooks", "987654")
    assert acl(w.permissions.get("directories", x)) == {
        "admins": [("CAN_MANAGE", True, ["/directories/"])],
        "users": [("CAN_MANAGE", True, [f"/directories/{object_id(w, '/Shared')}"])],
    }


def test_the_permissions_of_other_objects_are_not_served(ws: LocalWorkspace) -> None:
    response = requests.get(
        f"{ws.url}/api/2.0/permissions/repos/1",
        headers={"Authorization": f"Bearer {ws.token}"},
        timeout=30,
    )
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_scim_lists_and_reads_users_and_groups(w) -> None:  # type: ignore[no-untyped-def]
    from databricks.sdk.errors import PermissionDenied

    me = w.current_user.me()
    (user,) = list(w.users.list())
    assert (user.id, user.user_name) == (me.id, ME)
    assert w.users.get(me.id).user_name == ME
    assert [u.user_name for u in w.users.list(filter=f'userName eq "{ME}"')] == [ME]
    assert list(w.users.list(filter='userName eq "someone@else"')) == []
    groups = {g.display_name: g for g in w.groups.list()}
    assert set(groups) == {"users", "admins"}
    assert [m.value for m in groups["admins"].members] == [me.id]
    assert w.groups.get(groups["users"].id).display_name == "users"
    assert [g.display_name for g in w.groups.list(filter='displayName sw "adm"')] == ["admins"]
    assert list(w.service_principals.list()) == []
    with pytest.raises(NotFound):
        w.users.get("123")
    with pytest.raises(PermissionDenied):
        w.users.create(user_name="other@example.com")
    with pytest.raises(PermissionDenied):
        w.groups.delete(groups["users"].id)


def test_a_token_configured_as_a_service_principal(tmp_path: Path) -> None:
    from orchestrator.local.server import ServicePrincipal

    app = "6f2a3e1c-0d4b-4a57-9c1e-1b2f3a4d5e6f"
    with start_local_workspace(
        tmp_path / "state",
        token=TOKEN,
        executor=FakeExecutor(),
        service_principal=ServicePrincipal(app, "ci robot"),
    ) as ws:
        w = sdk_client(ws)
        me = w.current_user.me()
        assert (me.user_name, me.display_name) == (app, "ci robot")
        (sp,) = list(w.service_principals.list())
        assert (sp.application_id, sp.display_name, sp.id) == (app, "ci robot", me.id)
        assert [u.user_name for u in w.users.list()] == [ME]
        assert w.service_principals.get(sp.id).application_id == app
        assert {o.path for o in w.workspace.list("/Users")} == {f"/Users/{ME}", f"/Users/{app}"}
        task = jobs.Task(task_key="a", notebook_task=jobs.NotebookTask(notebook_path="/x"))
        job = w.jobs.get(w.jobs.create(name="j", tasks=[task]).job_id)
        assert job.creator_user_name == app
        owner = acl(w.jobs.get_permissions(str(job.job_id)))
        assert owner[app] == [("IS_OWNER", False, [])]


def test_special_folders_cannot_be_deleted(w) -> None:  # type: ignore[no-untyped-def]
    for path in ("/Shared", "/Users", f"/Users/{ME}"):
        with pytest.raises(DatabricksError, match="is protected") as caught:
            w.workspace.delete(path, recursive=True)
        assert caught.value.error_code == "DIRECTORY_PROTECTED"
    assert {o.path for o in w.workspace.list("/")} == {"/Users", "/Shared"}
    w.workspace.mkdirs("/Shared/x")
    w.workspace.delete("/Shared/x")  # what is below them can go


def test_job_and_cluster_permissions_are_kept_and_checked(w) -> None:  # type: ignore[no-untyped-def]
    from databricks.sdk.service import compute

    task = jobs.Task(task_key="a", notebook_task=jobs.NotebookTask(notebook_path="/x"))
    job_id = str(w.jobs.create(name="j", tasks=[task]).job_id)
    levels = [
        lvl.permission_level.value for lvl in w.jobs.get_permission_levels(job_id).permission_levels
    ]
    assert levels == ["CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE"]
    before = w.jobs.get_permissions(job_id)
    assert before.object_id == f"/jobs/{job_id}" and before.object_type == "job"
    assert acl(before) == {
        ME: [("IS_OWNER", False, [])],
        "admins": [("CAN_MANAGE", True, ["/jobs/"])],
    }
    w.jobs.set_permissions(
        job_id,
        access_control_list=[
            jobs.JobAccessControlRequest(
                group_name="users", permission_level=jobs.JobPermissionLevel.CAN_MANAGE_RUN
            )
        ],
    )
    after = acl(w.jobs.get_permissions(job_id))
    assert after["users"] == [("CAN_MANAGE_RUN", False, [])]
    assert after[ME] == [("IS_OWNER", False, [])]  # a PUT keeps the owner
    w.jobs.update_permissions(
        job_id,
        access_control_list=[
            jobs.JobAccessControlRequest(
                group_name="users", permission_level=jobs.JobPermissionLevel.CAN_VIEW
            )
        ],
    )
    assert acl(w.jobs.get_permissions(job_id))["users"] == [("CAN_VIEW", False, [])]
    with pytest.raises(DatabricksError, match="Invalid permission level"):
        w.permissions.set(
            "jobs",
            job_id,
            access_control_list=[
                iam.AccessControlRequest(
                    group_name="users", permission_level=iam.PermissionLevel.CAN_READ
                )
            ],
        )
    cid = w.clusters.create_and_wait(spark_version="15.4.x-scala2.12").cluster_id
    w.clusters.set_permissions(
        cid,
        access_control_list=[
            compute.ClusterAccessControlRequest(
                group_name="users", permission_level=compute.ClusterPermissionLevel.CAN_ATTACH_TO
            )
        ],
    )
    perms = acl(w.clusters.get_permissions(cid))
    assert perms == {  # a PUT replaces every direct grant, the creator's too
        "users": [("CAN_ATTACH_TO", False, [])],
        "admins": [("CAN_MANAGE", True, ["/clusters/"])],
    }
    w.jobs.delete(int(job_id))
    with pytest.raises(NotFound):
        w.jobs.get_permissions(job_id)
