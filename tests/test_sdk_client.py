"""The adapter's SDK client is built from the few SDK modules it uses, and the rest of the SDK
still works for anyone in the same process (in a fresh interpreter: imports are per process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
