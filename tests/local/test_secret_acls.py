"""``secrets/get`` and the secret scopes' ACLs through databricks-sdk: the value comes back
base64-encoded to a caller with READ (the local caller is an admin, who has MANAGE on every
scope), a scope's creator manages it, ACLs are put, read, listed and deleted, and go with
their scope."""

from __future__ import annotations

import base64

import pytest
from databricks.sdk.errors import InvalidParameterValue, NotFound
from databricks.sdk.service import workspace

from orchestrator.local.server import LocalWorkspace
from tests.conftest import sdk_client

ME = "local@localhost"


@pytest.fixture
def w(ws: LocalWorkspace):  # type: ignore[no-untyped-def]
    return sdk_client(ws)


def test_get_secret_answers_the_value_in_base64(w) -> None:  # type: ignore[no-untyped-def]
    w.secrets.create_scope("ci")
    w.secrets.put_secret("ci", "token", string_value="s3cr\u00e9t")
    got = w.secrets.get_secret("ci", "token")
    assert got.key == "token"
    assert base64.b64decode(got.value).decode() == "s3cr\u00e9t"
    with pytest.raises(NotFound):
        w.secrets.get_secret("ci", "nope")
    with pytest.raises(NotFound):
        w.secrets.get_secret("nope", "token")


def test_acls_are_put_read_listed_and_deleted(w) -> None:  # type: ignore[no-untyped-def]
    w.secrets.create_scope("ci")
    creator = w.secrets.get_acl("ci", ME)
    assert (creator.principal, creator.permission) == (ME, workspace.AclPermission.MANAGE)
    w.secrets.put_acl("ci", "users", workspace.AclPermission.READ)
    w.secrets.put_acl("ci", "users", workspace.AclPermission.WRITE)  # a second put replaces
    listed = {a.principal: a.permission.value for a in w.secrets.list_acls("ci")}
    assert listed == {ME: "MANAGE", "users": "WRITE"}
    w.secrets.delete_acl("ci", "users")
    assert [a.principal for a in w.secrets.list_acls("ci")] == [ME]
    with pytest.raises(NotFound):
        w.secrets.get_acl("ci", "users")
    with pytest.raises(NotFound):
        w.secrets.put_acl("ci", "nobody@example.com", workspace.AclPermission.READ)
    w.secrets.delete_scope("ci")
    w.secrets.create_scope("ci", initial_manage_principal="users")
    assert {a.principal for a in w.secrets.list_acls("ci")} == {"users"}
    with pytest.raises(InvalidParameterValue):
        w.secrets.create_scope("other", initial_manage_principal="admins")
