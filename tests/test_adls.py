"""ADLS Gen2 storage against Azurite, through the same ``AdlsStorage`` the product uses: every
operation, content-addressed test data, hierarchical-namespace folder blobs, transient faults on
the wire (a fault proxy in front of Azurite), atomic uploads, each way to authenticate, and a
full ``orchestrator build`` whose artifacts go to Azurite and whose results come back from it.

Azurite is started once for the module on a free loopback port. Without it the tests skip on a
developer's machine and fail in CI (``CI`` set), where ``.ci/setup`` must have installed it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.kit.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from orchestrator.abfss import parse_abfss
from orchestrator.errors import InfrastructureError, UsageError
from orchestrator.layout import data_prefix
from orchestrator.storage.adls import AdlsStorage, RetrySettings
from orchestrator.storage.base import StorageAuth, tree_digest
from orchestrator.storage.open import open_storage
from tests.faultproxy import fault_proxy

FAST_RETRY = RetrySettings(total=4, initial_backoff=0, increment_base=0, jitter=0, read_timeout=5)
KIB = 1024


def url(container: str, prefix: str = "ci") -> str:
    return f"abfss://{container}@{ACCOUNT}.dfs.core.windows.net/{prefix}".rstrip("/")


def adls(azurite: Azurite, container: str, prefix: str = "ci", **options: object) -> AdlsStorage:
    options.setdefault("retry", FAST_RETRY)
    return AdlsStorage(
        url(container, prefix),
        auth=StorageAuth(connection_string=azurite.connection_string),
        **options,  # type: ignore[arg-type]
    )


def blob_names(azurite: Azurite, container: str) -> list[str]:
    from azure.storage.blob import ContainerClient

    with ContainerClient.from_connection_string(azurite.connection_string, container) as client:
        return sorted(b.name for b in client.list_blobs())


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"hello\n",
        "empty.txt": b"",
        "nested/deeper/b.csv": b"x,y\n1,2\n",
        "bin/blob.bin": bytes(range(256)) * 4 * KIB,  # 1 MiB: several blocks at 256 KiB
        "__pycache__/skip.pyc": b"never uploaded",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    del files["__pycache__/skip.pyc"]
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- every operation ----------------------------------------------------------------------------


@pytest.mark.slow
def test_upload_download_read_size_list_delete_round_trip(
    azurite: Azurite, container: str, tmp_path: Path
) -> None:
    files = make_tree(tmp_path / "src")
    storage = adls(azurite, container, block_size=256 * KIB)
    try:
        assert storage.upload_tree(tmp_path / "src", "repo/b1") == 4
        assert storage.upload_tree(tmp_path / "src", "repo/b2") == 4
        assert storage.list_children("") == ["repo"]
        assert storage.list_children("repo") == ["b1", "b2"]
        assert storage.list_children("repo/b1") == ["bin", "nested"]
        assert storage.read_text("repo/b1/a.txt") == "hello\n"
        assert storage.read_text("repo/b1/missing.txt") is None
        assert storage.size("repo/b1") == sum(len(d) for d in files.values())
        assert storage.size("repo/none") == 0
        assert storage.download_prefix("repo/b1", tmp_path / "out") == 4
        assert read_tree(tmp_path / "out") == files
        assert storage.download_prefix("repo/none", tmp_path / "none") == 0
        assert storage.delete_prefix("repo/b1") is True
        assert storage.delete_prefix("repo/b1") is False
        assert storage.list_children("repo") == ["b2"]
        assert all(n.startswith("ci/repo/b2/") for n in blob_names(azurite, container))
    finally:
        storage.close()


def test_large_files_go_in_blocks_small_ones_in_one_request(
    azurite: Azurite, container: str, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "small.txt").write_bytes(b"s" * 1000)
    (tmp_path / "src" / "big.bin").write_bytes(b"b" * (1024 * KIB + 1))
    storage = adls(azurite, container, block_size=256 * KIB, concurrency=1)
    try:
        storage.upload_tree(tmp_path / "src", "x")
        # small: one Put Blob; big: five Put Block + one Put Block List
        assert storage.stats.by_method == {"PUT": 1 + 5 + 1}
        assert storage.stats.bytes_sent >= 1000 + 1024 * KIB + 1
    finally:
        storage.close()


def test_root_prefix_and_container_root_name_the_same_places(
    azurite: Azurite, container: str, tmp_path: Path
) -> None:
    make_tree(tmp_path / "src")
    at_root = adls(azurite, container, prefix="")
    nested = adls(azurite, container, prefix="deep/er")
    try:
        at_root.upload_tree(tmp_path / "src", "r/b")
        nested.upload_tree(tmp_path / "src", "r/b")
        assert at_root.list_children("") == ["deep", "r"]
        assert nested.list_children("") == ["r"]
        assert nested.describe("r/b") == url(container, "deep/er/r/b")
        assert nested.cluster_path("r/b") == url(container, "deep/er/r/b")
        mounted = adls(azurite, container, cluster_root="/dbfs/mnt/builds/")
        assert mounted.cluster_path("r/b") == "/dbfs/mnt/builds/r/b"
        mounted.close()
    finally:
        at_root.close()
        nested.close()


def test_hierarchical_namespace_folder_blobs_are_skipped_and_deleted_last(
    azurite: Azurite, container: str, tmp_path: Path
) -> None:
    """An ADLS Gen2 account lists folders as zero-length blobs with ``hdi_isfolder=true``
    (written here by hand: Azurite has no hierarchical namespace)."""
    from azure.storage.blob import ContainerClient

    folder = {"hdi_isfolder": "true"}
    with ContainerClient.from_connection_string(azurite.connection_string, container) as client:
        for name in ("ci/r/b", "ci/r/b/results", "ci/r/b/results/t", "ci/r/empty"):
            client.upload_blob(name, b"", metadata=folder)
        client.upload_blob("ci/r/b/results/t/junit.xml", b"<testsuite/>")
    storage = adls(azurite, container)
    try:
        assert storage.list_children("r") == ["b", "empty"]
        assert storage.download_prefix("r/b", tmp_path / "out") == 1
        assert (tmp_path / "out" / "results" / "t" / "junit.xml").read_bytes() == b"<testsuite/>"
        assert storage.size("r/b") == len(b"<testsuite/>")
        assert storage.delete_prefix("r/b") is True
        assert blob_names(azurite, container) == ["ci/r/empty"]
    finally:
        storage.close()


def test_unsafe_blob_names_are_never_written_outside_the_target(
    azurite: Azurite, container: str, tmp_path: Path
) -> None:
    """Blob names come from the cluster: one that is not a plain relative path is skipped."""
    from azure.storage.blob import ContainerClient

    from orchestrator.storage.adls import _safe_relative

    with ContainerClient.from_connection_string(azurite.connection_string, container) as client:
        client.upload_blob("ci/r/b/ok.xml", b"ok")
        client.upload_blob("ci/r/b//double.xml", b"bad")
    storage = adls(azurite, container)
    try:
        storage.download_prefix("r/b", tmp_path / "out")
        assert read_tree(tmp_path) == {"out/ok.xml": b"ok"}
    finally:
        storage.close()
    # the SDK cannot even send these (its URL is normalized), but another client might
    for name in ("../../escape.xml", "a/../../x", "./x", "a\\..\\x", ""):
        assert _safe_relative(name) is None
    assert str(_safe_relative("t/run.xml")) == "t/run.xml"


# -- content-addressed test data ------------------------------------------------------------------


def test_test_data_is_stored_once_by_content_and_never_overwritten(
    azurite: Azurite, container: str, tmp_path: Path
) -> None:
    files = make_tree(tmp_path / "data")
    prefix = data_prefix(tree_digest(tmp_path / "data"))
    storage = adls(azurite, container, block_size=256 * KIB)
    try:
        assert storage.upload_immutable(tmp_path / "data", prefix) == 4
        storage.stats.reset()
        assert storage.upload_immutable(tmp_path / "data", prefix) == 0
        assert storage.stats.by_method == {"GET": 1} and storage.stats.bytes_sent == 0
        assert storage.list_children("_data") == [prefix.split("/")[1]]
        # a partly stored copy (an earlier build died) is completed, not redone
        storage.delete_prefix(f"{prefix}/nested")
        assert storage.upload_immutable(tmp_path / "data", prefix) == 1
        # a stored file that does not match is an error, never overwritten
        (tmp_path / "data" / "a.txt").write_bytes(b"changed!!\n")
        with pytest.raises(InfrastructureError, match="never overwritten"):
            storage.upload_immutable(tmp_path / "data", prefix)
        assert storage.read_text(f"{prefix}/a.txt") == files["a.txt"].decode()
        # changed data has another digest, so another prefix
        assert data_prefix(tree_digest(tmp_path / "data")) != prefix
    finally:
        storage.close()


def test_concurrent_builds_uploading_the_same_data_each_succeed(
    azurite: Azurite, container: str, tmp_path: Path
) -> None:
    make_tree(tmp_path / "data")
    prefix = data_prefix(tree_digest(tmp_path / "data"))
    storages = [adls(azurite, container, block_size=256 * KIB) for _ in range(4)]
    sent: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(storages))

    def upload(storage: AdlsStorage) -> None:
        barrier.wait()
        try:
            sent.append(storage.upload_immutable(tmp_path / "data", prefix))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for storage in storages:
        storage.close()
    assert errors == []
    assert sum(sent) == 4  # each file was written by exactly one of them
    assert len(blob_names(azurite, container)) == 4


# -- faults -------------------------------------------------------------------------------------


def proxied(azurite: Azurite, container: str, port: int, **options: object) -> AdlsStorage:
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
    connection = azurite.connection_string.replace(azurite.blob_endpoint, endpoint)
    options.setdefault("retry", FAST_RETRY)
    return AdlsStorage(
        url(container),
        auth=StorageAuth(connection_string=connection),
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("fault", ["503", "500", "drop", "drop-after", "slow"])
def test_transient_faults_are_retried_and_every_operation_succeeds(
    azurite: Azurite, container: str, tmp_path: Path, fault: str
) -> None:
    files = make_tree(tmp_path / "src")
    prefix = data_prefix(tree_digest(tmp_path / "src"))

    def plan(method: str, path: str, n: int) -> str | None:
        return fault if n % 3 == 1 else None  # the first attempt of many requests fails

    retry = RetrySettings(total=4, initial_backoff=0, increment_base=0, jitter=0, read_timeout=1)
    with fault_proxy(azurite.port, plan, slow_seconds=2.5) as proxy:
        storage = proxied(azurite, container, proxy.port, block_size=256 * KIB, retry=retry)
        try:
            assert storage.upload_tree(tmp_path / "src", "r/b") == 4
            # "drop-after": a conditional write that landed, retried, finds its own blob
            assert storage.upload_immutable(tmp_path / "src", prefix) <= 4
            assert storage.upload_immutable(tmp_path / "src", prefix) == 0
            assert storage.size(prefix) == sum(len(d) for d in files.values())
            assert storage.list_children("r") == ["b"]
            assert storage.read_text("r/b/a.txt") == "hello\n"
            assert storage.download_prefix("r/b", tmp_path / "out") == 4
            assert read_tree(tmp_path / "out") == files
            assert storage.size("r/b") == sum(len(d) for d in files.values())
            assert storage.delete_prefix("r/b") is True
        finally:
            storage.close()
        assert proxy.injected[fault] >= 5
    assert storage.stats.requests > proxy.requests - proxy.injected[fault] - 1


def test_a_failed_upload_leaves_no_blob_a_notebook_could_read(
    azurite: Azurite, container: str, tmp_path: Path
) -> None:
    """Blocks are staged, then committed at once: with the commit refused for good, the upload
    fails (one line, after the retries) and the blob does not exist at all."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.bin").write_bytes(b"m" * (1024 * KIB))

    def plan(method: str, path: str, n: int) -> str | None:
        return "503" if "comp=blocklist" in path else None

    with fault_proxy(azurite.port, plan) as proxy:
        storage = proxied(azurite, container, proxy.port, block_size=256 * KIB)
        try:
            with pytest.raises(InfrastructureError) as failure:
                storage.upload_tree(tmp_path / "src", "r/b")
        finally:
            storage.close()
        assert proxy.injected["503"] == FAST_RETRY.total + 1
    assert "\n" not in str(failure.value) and "uploading" in str(failure.value)
    assert blob_names(azurite, container) == []
    reader = adls(azurite, container)
    assert reader.read_text("r/b/model.bin") is None
    reader.close()


# -- authentication and errors ------------------------------------------------------------------


def test_account_key_and_sas_authenticate_and_a_wrong_key_is_one_line(
    azurite: Azurite, container: str, tmp_path: Path
) -> None:
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    make_tree(tmp_path / "src")
    sas = generate_account_sas(
        ACCOUNT,
        ACCOUNT_KEY,
        resource_types=ResourceTypes(container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    for auth in (StorageAuth(account_key=ACCOUNT_KEY), StorageAuth(sas_token=f"?{sas}")):
        storage = AdlsStorage(
            url(container), auth=auth, blob_endpoint=azurite.blob_endpoint, retry=FAST_RETRY
        )
        try:
            assert storage.upload_tree(tmp_path / "src", f"k/{auth.kind[:3]}") == 4
            assert storage.read_text(f"k/{auth.kind[:3]}/a.txt") == "hello\n"
        finally:
            storage.close()
    assert StorageAuth(account_key=ACCOUNT_KEY).kind == "account key"
    assert ACCOUNT_KEY not in repr(StorageAuth(account_key=ACCOUNT_KEY))
    wrong = "A" * 86 + "=="
    storage = AdlsStorage(
        url(container),
        auth=StorageAuth(account_key=wrong),
        blob_endpoint=azurite.blob_endpoint,
        retry=FAST_RETRY,
    )
    try:
        with pytest.raises(InfrastructureError) as failure:
            storage.upload_tree(tmp_path / "src", "k/wrong")
    finally:
        storage.close()
    message = str(failure.value)
    assert "not authorized" in message and "\n" not in message and wrong not in message


def test_a_missing_container_is_named(azurite: Azurite, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    storage = adls(azurite, "doesnotexist")
    try:
        with pytest.raises(InfrastructureError, match="container doesnotexist does not exist"):
            storage.upload_tree(tmp_path / "src", "r/b")
    finally:
        storage.close()


def test_urls_endpoints_and_bad_configuration() -> None:
    location = parse_abfss("abfss://builds@acct01.dfs.core.chinacloudapi.cn/ci/x/")
    assert location.blob_endpoint == "https://acct01.blob.core.chinacloudapi.cn"
    assert (location.container, location.prefix) == ("builds", "ci/x")
    assert location.url("r/b") == "abfss://builds@acct01.dfs.core.chinacloudapi.cn/ci/x/r/b"
    for bad in ("abfss://builds@acct01.blob.core.windows.net/x", "abfss://b@a.dfs.x/../y"):
        with pytest.raises(UsageError):
            parse_abfss(bad)
    other = "DefaultEndpointsProtocol=https;AccountName=other;AccountKey=" + ACCOUNT_KEY
    with pytest.raises(UsageError, match="account other"):
        AdlsStorage(url("c"), auth=StorageAuth(connection_string=other))
    storage = open_storage(url("c"), cluster_root=None, base=Path("/"), auth=StorageAuth())
    assert isinstance(storage, AdlsStorage)  # DefaultAzureCredential: nothing contacted yet
    storage.close()


def test_without_the_azure_sdk_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "azure.storage.blob", None)
    with pytest.raises(UsageError, match=r"pip install 'orchestrator\[azure\]'"):
        AdlsStorage(url("c"), auth=StorageAuth(account_key=ACCOUNT_KEY))
