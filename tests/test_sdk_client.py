"""The adapter's SDK client is built from the few SDK modules it uses, and the rest of the SDK
still works for anyone in the same process (in a fresh interpreter: imports are per process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.local.server import start_local_workspace

PROBE = """
import json, sys
from orchestrator.adapters.databricks import open_workspace
ws = open_workspace({"host": sys.argv[1], "token": sys.argv[2], "auth_type": "pat"}, pool_size=4)
ws.client.workspace.mkdirs("/probe")
listed = [o.path for o in ws.client.workspace.list("/")]
lean = sorted(m for m in sys.modules if m.startswith("databricks.sdk.service."))
from databricks.sdk import WorkspaceClient   # the rest of the package, on first use
import databricks.sdk
full = WorkspaceClient(host=sys.argv[1], token=sys.argv[2], auth_type="pat")
print(json.dumps({
    "listed": listed,
    "lean": lean,
    "catalog_after": "databricks.sdk.service.catalog" in sys.modules,
    "same": databricks.sdk.WorkspaceClient is WorkspaceClient,
    "full_lists": [o.path for o in full.workspace.list("/")] == listed,
}))
"""


def test_the_client_imports_only_what_it_uses_and_the_sdk_stays_whole(tmp_path: Path) -> None:
    with start_local_workspace(tmp_path / "ws") as ws:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, ws.url, ws.token],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert "/probe" in seen["listed"]
    assert "databricks.sdk.service.jobs" in seen["lean"]
    assert "databricks.sdk.service.catalog" not in seen["lean"]
    assert len(seen["lean"]) < 10
    assert seen["catalog_after"] and seen["same"] and seen["full_lists"]


def test_the_proxy_and_ca_bundle_variables_are_read_once_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client reads the proxy and CA variables when it is made, not per request; what it
    read is what requests would have read per request."""
    from orchestrator.adapters.databricks import open_workspace

    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    settings = {"host": "https://adb-1.2.azuredatabricks.net", "token": "t", "auth_type": "pat"}

    session = open_workspace(settings, pool_size=2).client._api_client._api_client._session

    assert session.trust_env is False
    assert session.proxies.get("https") == "http://127.0.0.1:3128"
    assert session.verify == str(bundle)
    monkeypatch.setenv("NO_PROXY", ".azuredatabricks.net")
    session = open_workspace(settings, pool_size=2).client._api_client._api_client._session
    assert "https" not in session.proxies
