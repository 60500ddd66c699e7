"""Who the caller is and what the workspace grants, through databricks-sdk: SCIM ``Me`` (the
workspace's one user), the folders a new workspace has, and the Permissions API of folders and
notebooks (inherited grants, PUT replaces, PATCH adds or changes, levels). Bad requests and
the state they leave alone are in tests/local/test_bad_input.py."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
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
    for bad in ("", "a/b", "..", "tab\there"):
        with pytest.raises(ValueError, match="not a user name"):
            start_local_workspace(tmp_path / "bad", executor=FakeExecutor(), user_name=bad)
