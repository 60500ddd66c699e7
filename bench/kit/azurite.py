"""Azurite (the Azure Storage emulator, npm ``azurite``) for the benchmarks and the tests.

``.ci/setup`` installs the pinned version into ``.ci/node`` (``npm install --prefix .ci/node
azurite@3.37.0``). :func:`run_azurite` starts its Blob service on a free loopback port, in memory,
with ``--skipApiVersionCheck`` (the Python SDK sends a newer ``x-ms-version`` than 3.37.0 knows)
and ``--loose`` (ignore headers it does not implement), and stops it afterwards. The tests'
``azurite`` fixture (tests/conftest.py) fails in CI when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AZURITE_VERSION = "3.37.0"
NODE_PREFIX = REPO / ".ci" / "node"
ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key (not a secret)
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_LISTENING = re.compile(r"listens on (https?)://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class Azurite:
    scheme: str
    port: int

    @property
    def blob_endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT};"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={self.blob_endpoint};"
        )


def azurite_command() -> list[str] | None:
    """The pinned ``azurite-blob`` launcher, or None when it is not installed."""
    binary = Path(
        os.environ.get("AZURITE_BLOB_BIN", NODE_PREFIX / "node_modules/.bin/azurite-blob")
    )
    package = NODE_PREFIX / "node_modules" / "azurite" / "package.json"
    if not binary.is_file():
        return None
    if "AZURITE_BLOB_BIN" not in os.environ:
        version = json.loads(package.read_text())["version"]
        if version != AZURITE_VERSION:
            raise RuntimeError(f"azurite {version} installed, {AZURITE_VERSION} expected")
    return [str(binary)]


@contextmanager
def run_azurite(
    workdir: Path, *, cert: Path | None = None, key: Path | None = None, oauth: bool = False
) -> Iterator[Azurite]:
    """Start Azurite's Blob service (https with ``cert``/``key``; ``oauth`` accepts bearer
    tokens, validated for audience, issuer and expiry but not signature)."""
    command = azurite_command()
    if command is None:
        raise FileNotFoundError("azurite is not installed (.ci/setup installs it into .ci/node)")
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        *command,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        "0",
        "--skipApiVersionCheck",
        "--loose",
        "--inMemoryPersistence",
        "--silent",
    ]
    if cert is not None and key is not None:
        args += ["--cert", str(cert), "--key", str(key)]
    if oauth:
        args += ["--oauth", "basic"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=workdir
    )
    found: list[tuple[str, int]] = []
    seen: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            match = _LISTENING.search(line)
            if match and not found:
                found.append((match[1], int(match[2])))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(60) or not found:
            raise RuntimeError("azurite did not start:\n" + "".join(seen[-20:]))
        yield Azurite(*found[0])
    finally:
        # in memory, nothing to flush: a SIGTERM would wait for the clients' keep-alive
        # connections to close (10 s and more after a test), so it is killed at once
        proc.kill()
        proc.wait()
        reader.join(5)


def new_container(azurite: Azurite) -> str:
    name = f"c{uuid.uuid4().hex[:20]}"
    create_container(azurite, name)
    return name


def create_container(azurite: Azurite, name: str) -> None:
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        service.create_container(name)


# -- a build whose storage is Azurite ------------------------------------------------------------

#: The environment variable the builds' config and the shim notebook read the connection from.
CONNECTION_ENV = "ORCH_TEST_AZURITE"

SHIM_NOTEBOOK = """# Databricks notebook source
# Test double for a cluster's view of ADLS. On Databricks the test notebooks read the build's
# abfss:// paths through a mount, a volume or Spark; the local workspace has none of those, so
# this notebook copies the build's inputs from Azurite to a scratch folder, runs the real test
# notebook on them, and copies the JUnit XML it wrote back to the build's results prefix.

# COMMAND ----------

for name in ("target", "tests_dir", "data_dir", "model_path", "results_dir", "table"):
    dbutils.widgets.text(name, "")

# COMMAND ----------

import os
import re
import tempfile

from azure.storage.blob import ContainerClient


def where(url):
    match = re.fullmatch(r"abfss://([^@]+)@[^/]+/(.+)", url)
    client = ContainerClient.from_connection_string(os.environ["ORCH_TEST_AZURITE"], match[1])
    return client, match[2].rstrip("/")


def pull(url, dest):
    client, key = where(url)
    for blob in client.list_blobs(name_starts_with=key + "/"):
        path = os.path.join(dest, blob.name[len(key) + 1 :])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as stream:
            client.download_blob(blob.name).readinto(stream)
    return dest


def pull_file(url, dest):
    client, key = where(url)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as stream:
        client.download_blob(key).readinto(stream)
    return dest


def push(folder, url):
    client, key = where(url)
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as stream:
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                client.upload_blob(f"{key}/{rel}", stream, overwrite=True)


scratch = tempfile.mkdtemp(prefix="abfss-shim-")
args = {"results_dir": f"{scratch}/results"}
for name in ("tests_dir", "data_dir"):  # the folders this test notebook is given
    if dbutils.widgets.get(name):
        args[name] = pull(dbutils.widgets.get(name), f"{scratch}/{name}")
if dbutils.widgets.get("model_path"):
    args["model_path"] = pull_file(dbutils.widgets.get("model_path"), f"{scratch}/model.rds")
if dbutils.widgets.get("table"):  # not storage: passed through as it is
    args["table"] = dbutils.widgets.get("table")
try:
    dbutils.notebook.run(dbutils.widgets.get("target"), 600, args)
finally:
    push(f"{scratch}/results", dbutils.widgets.get("results_dir"))
"""


def use_abfss_shim(project: Path) -> None:
    """Route the sample job's test notebooks through :data:`SHIM_NOTEBOOK`."""
    (project / "databricks" / "tests" / "abfss_shim.py").write_text(SHIM_NOTEBOOK)
    template_path = project / "job-template.json"
    template = json.loads(template_path.read_text())
    for task in template["tasks"]:
        notebook = task["notebook_task"]
        notebook.setdefault("base_parameters", {})["target"] = notebook["notebook_path"].rsplit(
            "/", 1
        )[-1]
        notebook["notebook_path"] = "tests/abfss_shim"
    template_path.write_text(json.dumps(template, indent=2))


def azurite_build_flags(container: str) -> list[str]:
    return [
        "--set",
        f"storage.root=abfss://{container}@{ACCOUNT}.dfs.core.windows.net/ci",
        "--set",
        f"storage.connection_string=env:{CONNECTION_ENV}",
    ]
