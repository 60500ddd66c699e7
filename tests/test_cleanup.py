"""``orchestrator cleanup`` against the local workspace over HTTP (through databricks-sdk) and a
local storage folder: retention by age and by count, dry runs that change nothing, re-runs
after a crash, orphaned runs, the rate limit, too-broad roots, and a property test that throws
random trees and roots at it and checks that nothing outside the build root is ever deleted.

"Old" builds are made by writing their ``_build.json`` markers with old ``created`` times, not by
running builds, so the tests stay fast; runs use the scheduler's fake executor.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orchestrator.adapters.databricks import ActiveRun, BuildJob, DatabricksWorkspace, Entry
from orchestrator.cleanup.discovery import discover, read_data_journal, write_data_journal
from orchestrator.cleanup.execute import cleanup, execute_cleanup, plan_cleanup
from orchestrator.cleanup.model import CleanupOptions, CleanupReport
from orchestrator.cleanup.policy import (
    Build,
    DataCopy,
    Policy,
    check_storage_root,
    check_workspace_root,
    marker_data,
    parse_age,
    read_marker,
    select_builds,
    select_data,
    select_orphans,
)
from orchestrator.cli import main
from orchestrator.errors import UsageError
from orchestrator.layout import build_job_name, is_build_name, journal_path
from orchestrator.local.server import FaultSettings, LocalWorkspace, start_local_workspace
from orchestrator.ratelimit import TokenBucket
from orchestrator.storage.folder import LocalFolderStorage
from tests.buildkit import remote_args
from tests.conftest import TOKEN, sdk_client
from tests.fakes import FakeClock, FakeExecutor
from tests.waiting import running_run

ROOT = "/Shared/builds"
NOW = datetime.now(UTC)
REPO = Path(__file__).resolve().parents[1]


# -- fixtures and helpers ----------------------------------------------------------------------


def start(tmp_path: Path, **faults: Any) -> LocalWorkspace:
    return start_local_workspace(
        tmp_path / "server",
        token=TOKEN,
        cluster_start_delay=0.1,
        executor=FakeExecutor(),
        faults=FaultSettings(**faults),
    )


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalWorkspace]:
    monkeypatch.setenv("ORCH_TEST_TOKEN", TOKEN)
    ws = start(tmp_path)
    try:
        yield ws
    finally:
        ws.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "orchestrator.yml").write_text(
        f"version: 1\ndefaults:\n  build_root: {ROOT}\n  storage:\n    root: storage\n"
    )
    return root


def run_cli(project: Path, ws: LocalWorkspace, *args: str) -> int:
    return main(["cleanup", "--config", str(project / "orchestrator.yml"), *remote_args(ws), *args])


def put(client: Any, path: str, data: bytes, *, notebook: bool = False) -> None:
    client.workspace.import_(
        path,
        content=base64.b64encode(data).decode(),
        format=ImportFormat.SOURCE if notebook else ImportFormat.AUTO,
        language=Language.PYTHON if notebook else None,
        overwrite=True,
    )


def marker(repo: str, build_id: str, created: datetime) -> bytes:
    return json.dumps(
        {"build_id": build_id, "repo": repo, "created": created.isoformat(timespec="seconds")}
    ).encode()


def make_build(
    client: Any,
    storage: Path,
    repo: str,
    build_id: str,
    *,
    age: timedelta | None,
    workspace: bool = True,
    in_storage: bool = True,
) -> None:
    """A build as `orchestrator build` leaves it, with its marker ``age`` old (None: none)."""
    folder = f"{ROOT}/{repo}/{build_id}"
    created = NOW - age if age is not None else None
    if workspace:
        client.workspace.mkdirs(f"{ROOT}/{repo}/_orchestrator")  # as every build leaves it
        client.workspace.mkdirs(f"{folder}/tests")
        put(client, f"{folder}/tests/run_pytest", b"print('hi')\n", notebook=True)
        if created is not None:
            put(client, f"{folder}/_build.json", marker(repo, build_id, created))
    if in_storage:
        prefix = storage / repo / build_id
        (prefix / "models").mkdir(parents=True, exist_ok=True)
        (prefix / "models" / "model.rds").write_bytes(b"x" * 1000)
        if created is not None:
            (prefix / "_build.json").write_bytes(marker(repo, build_id, created))


def make_entry(client: Any, repo: str) -> None:
    client.workspace.mkdirs(f"{ROOT}/{repo}/_orchestrator")
    put(client, f"{ROOT}/{repo}/_orchestrator/entry", b"print('entry')\n", notebook=True)


def ws_names(client: Any, repo: str) -> list[str]:
    try:
        return sorted(o.path.rsplit("/", 1)[1] for o in client.workspace.list(f"{ROOT}/{repo}"))
    except Exception:  # noqa: BLE001 - NotFound
        return []


def st_names(storage: Path, repo: str) -> list[str]:
    folder = storage / repo
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def snapshot(client: Any, storage: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Every workspace object (path, type) and every storage file (path, size)."""
    objects = sorted(
        f"{o.path} {o.object_type.value}" for o in client.workspace.list("/", recursive=True)
    )
    files = sorted(
        (str(p.relative_to(storage)), p.stat().st_size) for p in storage.rglob("*") if p.is_file()
    )
    return objects, files


def options(**policy: Any) -> CleanupOptions:
    return CleanupOptions(Policy(**policy), rate=None)


def library_cleanup(
    ws: LocalWorkspace, storage: Path, opts: CleanupOptions, *, now: datetime
) -> CleanupReport:
    client = sdk_client(ws)
    return cleanup(
        tree=DatabricksWorkspace(client),
        storage=LocalFolderStorage(storage),
        runs=DatabricksWorkspace(client),
        root=ROOT,
        storage_root=str(storage),
        options=opts,
        now=now,
    )


class FakeTree:
    """An in-memory workspace: path -> None (folder) or bytes (file)."""

    def __init__(self, objects: dict[str, bytes | None]) -> None:
        self.objects = dict(objects)
        self.deleted: list[str] = []
        self.lock = threading.Lock()

    def list(self, path: str) -> list[Entry] | None:
        with self.lock:
            if self.objects.get(path, b"") is not None and path != "/":
                return None
            prefix = path.rstrip("/") + "/"
            return [
                Entry(p[len(prefix) :], kind is None, NOW - timedelta(days=400))
                for p, kind in self.objects.items()
                if p.startswith(prefix) and "/" not in p[len(prefix) :]
            ]

    def read_text(self, path: str) -> str | None:
        with self.lock:
            data = self.objects.get(path)
        return data.decode() if data is not None else None

    def write_text(self, path: str, text: str) -> None:
        with self.lock:
            self.objects[path] = text.encode()

    def delete(self, path: str) -> bool:
        with self.lock:
            self.deleted.append(path)
            gone = [p for p in self.objects if p == path or p.startswith(path + "/")]
            for p in gone:
                del self.objects[p]
            return bool(gone)


class NoRuns:
    def active(self, repo: str) -> list[ActiveRun]:
        return []

    def cancel(self, run_id: int) -> bool:
        raise AssertionError("no runs to cancel")

    def wait_ended(self, run_ids: Any, *, timeout: float) -> set[int]:
        return set(run_ids)

    def delete_build_jobs(self, repo: str, build_id: str) -> int:
        return 0

    def build_jobs(self) -> list[BuildJob]:
        return []


def _add(objects: dict[str, bytes | None], path: str) -> None:
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        objects.setdefault("/" + "/".join(parts[:i]), None)


# -- retention ---------------------------------------------------------------------------------


def test_retention_by_age_deletes_old_folders_and_prefixes_of_every_repo(
    server: LocalWorkspace, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = sdk_client(server)
    storage = project / "storage"
    make_entry(w, "sample")
    for build_id, days in (("b1", 30), ("b2", 20), ("b3", 2)):
        make_build(w, storage, "sample", build_id, age=timedelta(days=days))
    make_build(w, storage, "other", "x1", age=timedelta(days=15))

    assert run_cli(project, server, "--older-than", "14d") == 0

    assert ws_names(w, "sample") == ["_orchestrator", "b3"]
    assert st_names(storage, "sample") == ["b3"]
    assert ws_names(w, "other") == ["_orchestrator"] and st_names(storage, "other") == []
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"cleanup of {ROOT} and {storage}"
    assert "deleted sample/b1 (folder, prefix, 1.1 KiB)" in out
    assert out[-1].startswith(
        "deleted 3 folders and 3 prefixes (3.2 KiB freed), cancelled 0 runs, kept 1 build in"
    )


def test_retention_by_count_keeps_each_repos_newest_and_only_touches_the_named_repo(
    server: LocalWorkspace, project: Path
) -> None:
    w = sdk_client(server)
    storage = project / "storage"
    for n in range(1, 6):  # b1 is the oldest
        make_build(w, storage, "sample", f"b{n}", age=timedelta(days=10 - n))
    make_build(w, storage, "other", "x1", age=timedelta(days=90))

    assert run_cli(project, server, "--keep-last", "2", "--repo", "sample") == 0

    assert ws_names(w, "sample") == ["_orchestrator", "b4", "b5"]
    assert st_names(storage, "sample") == ["b4", "b5"]
    assert ws_names(w, "other") == ["_orchestrator", "x1"] and st_names(storage, "other") == ["x1"]


def test_both_rules_delete_only_what_neither_keeps() -> None:
    builds = [
        Build("r", f"d{d}", created=NOW - timedelta(days=d), in_workspace=True)
        for d in (30, 25, 20, 10, 5)
    ]
    policy = Policy(older_than=timedelta(days=14), keep_last=3)
    decisions = select_builds(builds, policy=policy, now=NOW)
    assert sorted(d.build.build_id for d in decisions if d.action == "delete") == ["d25", "d30"]
    kept = {d.build.build_id: d.reason for d in decisions if d.action == "keep"}
    assert kept["d20"] == "one of the 3 newest"
    assert "younger than 14d" in kept["d5"]


def test_builds_younger_than_an_hour_and_builds_with_a_live_run_are_kept() -> None:
    builds = [
        Build("r", "new", created=NOW - timedelta(minutes=5), in_workspace=True),
        Build("r", "busy", created=NOW - timedelta(days=40), in_workspace=True),
    ]
    decisions = select_builds(
        builds,
        policy=Policy(keep_last=0),
        now=NOW,
        protected={("r", "busy"): "run 7 is active"},
    )
    assert {d.build.build_id: (d.action, d.reason) for d in decisions} == {
        "new": ("keep", "younger than 1h00m (may be in progress)"),
        "busy": ("keep", "run 7 is active"),
    }


def test_an_unmarked_folder_is_reported_and_left_alone_unless_included(
    server: LocalWorkspace, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = sdk_client(server)
    storage = project / "storage"
    make_build(w, storage, "sample", "nomarker", age=None)
    make_build(w, storage, "sample", "old", age=timedelta(days=30))

    assert run_cli(project, server, "--older-than", "14d") == 0
    out = capsys.readouterr().out
    assert "left alone sample/nomarker: no marker (--include-unmarked to include)" in out
    assert ws_names(w, "sample") == ["_orchestrator", "nomarker"]
    assert st_names(storage, "sample") == ["nomarker"]

    # included: judged by the folder's and the files' modification times
    report = library_cleanup(
        server,
        storage,
        options(older_than=timedelta(days=14), include_unmarked=True),
        now=NOW + timedelta(days=30),
    )
    assert [d.build_id for d in report.deleted] == ["nomarker"]
    assert ws_names(w, "sample") == ["_orchestrator"] and st_names(storage, "sample") == []


def test_a_marker_naming_another_build_does_not_count() -> None:
    text = marker("sample", "b9", NOW - timedelta(days=99)).decode()
    assert read_marker(text, repo="sample", build_id="b1") == "marker names build_id 'b9', not 'b1'"
    assert read_marker("{", repo="r", build_id="b") == "unreadable marker"
    assert read_marker('{"created": "2024-01-01T00:00:00"}', repo="r", build_id="b") == datetime(
        2024, 1, 1, tzinfo=UTC
    )


def test_orchestrator_folders_and_shared_test_data_are_never_candidates(
    server: LocalWorkspace, project: Path
) -> None:
    w = sdk_client(server)
    storage = project / "storage"
    make_entry(w, "sample")
    make_build(w, storage, "sample", "b1", age=timedelta(days=30))
    shared = storage / "_data" / "abc123"
    shared.mkdir(parents=True)
    (shared / "x.csv").write_text("a,b\n")
    os.utime(shared / "x.csv", (0, 0))
    report = library_cleanup(
        server,
        storage,
        options(keep_last=0, include_unmarked=True),
        now=NOW + timedelta(days=365),
    )
    assert [d.build_id for d in report.deleted] == ["b1"]
    assert ws_names(w, "sample") == ["_orchestrator"]
    assert (shared / "x.csv").exists()


# -- dry run -----------------------------------------------------------------------------------


def test_dry_run_lists_exactly_what_a_real_run_deletes_and_changes_nothing(
    server: LocalWorkspace, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = sdk_client(server)
    storage = project / "storage"
    make_entry(w, "sample")
    for build_id, days in (("b1", 30), ("b2", 20), ("b3", 2)):
        make_build(w, storage, "sample", build_id, age=timedelta(days=days))
    make_build(w, storage, "sample", "s1", age=timedelta(days=40), workspace=False)
    job_id = _build_job(w, sleep="30")
    run = w.jobs.run_now(job_id, job_parameters={"build_id": "gone"}).run_id
    before = snapshot(w, storage)
    server.faults.reset_counts()

    assert run_cli(project, server, "--older-than", "14d", "--dry-run", "--json") == 0

    plan = json.loads(capsys.readouterr().out)
    assert snapshot(w, storage) == before
    counted = server.faults.snapshot()["requests"]
    assert not [k for k in counted if k.startswith("POST")], counted
    assert w.jobs.get_run(run).state.life_cycle_state != jobs.RunLifeCycleState.TERMINATED
    would = {(d["repo"], d["build_id"]) for d in plan["delete"]}
    assert would == {("sample", "b1"), ("sample", "b2"), ("sample", "s1")}
    assert [c["run_id"] for c in plan["cancel"]] == [run]
    assert plan["summary"]["folders_deleted"] == 0 and plan["dry_run"] is True

    assert run_cli(project, server, "--older-than", "14d", "--json") == 0
    done = json.loads(capsys.readouterr().out)
    deleted = {(d["repo"], d["build_id"]) for d in done["delete"]}
    assert deleted == would
    assert done["summary"]["runs_cancelled"] == 1
    assert done["summary"]["folders_deleted"] == 2 and done["summary"]["prefixes_deleted"] == 3
    assert done["summary"]["bytes_freed"] == sum(
        size for path, size in before[1] if path.split("/")[1] in ("b1", "b2", "s1")
    )
    assert ws_names(w, "sample") == ["_orchestrator", "b3"]


# -- crashes and idempotency -------------------------------------------------------------------


def test_a_rerun_after_a_killed_cleanup_finishes_the_job(
    server: LocalWorkspace, project: Path
) -> None:
    w = sdk_client(server)
    storage = project / "storage"
    make_entry(w, "sample")
    old = [f"b{n:02d}" for n in range(16)]
    for build_id in old:
        make_build(w, storage, "sample", build_id, age=timedelta(days=30))
    make_build(w, storage, "sample", "new", age=timedelta(days=1))
    argv = [sys.executable, "-m", "orchestrator", "cleanup", "--config"]
    argv += [str(project / "orchestrator.yml"), *remote_args(server)]
    argv += ["--older-than", "14d", "--rate", "4", "--concurrency", "2"]
    child = subprocess.Popen(argv, cwd=REPO, env=os.environ, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(ws_names(w, "sample")) > 14 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.kill()  # SIGKILL: no chance to tidy up
        child.wait()
    left = ws_names(w, "sample")
    assert "b00" not in left and "b15" in left, "killed in the middle"
    journal = json.loads(w.workspace.download(journal_path(ROOT, "sample")).read())
    assert set(journal["pending"]) == set(old)
    # a half-deleted build: its markers gone, the rest still there (storage prefixes go
    # unthrottled beside the throttled workspace deletes, so b15's may be gone already)
    (storage / "sample" / "b15" / "_build.json").unlink(missing_ok=True)
    w.workspace.delete(f"{ROOT}/sample/b15/_build.json")

    assert run_cli(project, server, "--older-than", "14d", "--rate", "0") == 0

    assert ws_names(w, "sample") == ["_orchestrator", "new"]
    assert st_names(storage, "sample") == ["new"]
    journal = json.loads(w.workspace.download(journal_path(ROOT, "sample")).read())
    assert journal["pending"] == []


def test_not_found_counts_as_done(server: LocalWorkspace, tmp_path: Path) -> None:
    w = sdk_client(server)
    storage = tmp_path / "storage"
    for build_id in ("b1", "b2"):
        make_build(w, storage, "sample", build_id, age=timedelta(days=30))
    tree, store, runs = DatabricksWorkspace(w), LocalFolderStorage(storage), DatabricksWorkspace(w)
    opts = options(older_than=timedelta(days=14))
    found = discover(tree, store, root=ROOT)
    plan = plan_cleanup(
        found, [], root=ROOT, storage_root=str(storage), policy=opts.policy, now=NOW
    )
    # someone else (another cleanup) deletes b1 between the plan and the deletes
    w.workspace.delete(f"{ROOT}/sample/b1", recursive=True)
    store.delete_prefix("sample/b1")

    report = execute_cleanup(plan, tree=tree, storage=store, runs=runs, options=opts)

    assert report.errors == () and report.exit_code == 0
    assert {(d.build_id, d.folder, d.prefix) for d in report.deleted} == {
        ("b1", False, False),
        ("b2", True, True),
    }


class ThreadsSeen(LocalFolderStorage):
    """A local folder that notes which thread reads its markers and deletes its prefixes."""

    def __init__(self, root: Path, *, parallel: bool) -> None:
        super().__init__(root)
        self.parallel = parallel
        self.readers: set[str] = set()
        self.deleters: set[str] = set()

    def read_text(self, path: str) -> str | None:
        self.readers.add(threading.current_thread().name)
        return super().read_text(path)

    def delete_prefix(self, prefix: str) -> bool:
        self.deleters.add(threading.current_thread().name)
        return super().delete_prefix(prefix)


@pytest.mark.parametrize("parallel", [False, True])
def test_a_local_folder_is_read_and_deleted_one_call_at_a_time(
    server: LocalWorkspace, tmp_path: Path, parallel: bool
) -> None:
    """A local folder's calls are system calls: threads would only contend for them
    (Storage.parallel), so its markers are read by the cleanup's own thread and its prefixes
    deleted by one thread; storage over the network gets the cleanup's concurrency."""
    w = sdk_client(server)
    for i in range(12):
        make_build(w, tmp_path / "storage", "sample", f"b{i:02d}", age=timedelta(days=30))
    store = ThreadsSeen(tmp_path / "storage", parallel=parallel)
    ws = DatabricksWorkspace(w)

    report = cleanup(
        tree=ws,
        storage=store,
        runs=ws,
        root=ROOT,
        storage_root=str(tmp_path / "storage"),
        options=replace(options(older_than=timedelta(days=14)), concurrency=4),
        now=NOW,
    )

    assert report.exit_code == 0 and len(report.deleted) == 12
    assert st_names(tmp_path / "storage", "sample") == []
    if parallel:  # in the pools (how many threads a pool starts is its own business)
        assert store.readers and all(n.startswith("discover") for n in store.readers)
        assert store.deleters and all(n.startswith("cleanup-st") for n in store.deleters)
    else:
        assert store.readers == {threading.current_thread().name}
        assert len(store.deleters) == 1


def test_a_journal_is_one_import_once_its_folder_exists(server: LocalWorkspace) -> None:
    """write_text imports first and creates the folder only on the workspace's 404, as the
    Databricks CLI writes files: a cleanup's journal rewrite is then one request, not two."""
    w = sdk_client(server)
    tree = DatabricksWorkspace(w)
    path = journal_path(ROOT, "sample")

    server.faults.reset_counts()
    tree.write_text(path, "first")  # no folder yet: import (404), mkdirs, import
    first = server.faults.snapshot()["requests"]
    server.faults.reset_counts()
    tree.write_text(path, "second")
    second = server.faults.snapshot()["requests"]

    assert tree.read_text(path) == "second"
    assert sum(n for k, n in first.items() if "mkdirs" in k) == 1
    assert second == {"POST workspace/import": 1}


def test_sigint_stops_between_deletes_and_the_journal_keeps_the_rest(tmp_path: Path) -> None:
    objects: dict[str, bytes | None] = {}
    for n in range(8):
        _add(objects, f"{ROOT}/r1/b{n}/tests")
        objects[f"{ROOT}/r1/b{n}/_build.json"] = marker("r1", f"b{n}", NOW - timedelta(days=30))
    _add(objects, f"{ROOT}/r1/_orchestrator")

    class Interrupting(FakeTree):
        def delete(self, path: str) -> bool:
            if len(self.deleted) == 2:  # the third delete: Ctrl-C arrives meanwhile
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)
            return super().delete(path)

    tree = Interrupting(objects)
    opts = CleanupOptions(Policy(keep_last=0), rate=None, concurrency=1)
    args: dict[str, Any] = {
        "storage": LocalFolderStorage(tmp_path),
        "runs": NoRuns(),
        "root": ROOT,
        "storage_root": str(tmp_path),
        "options": opts,
        "now": NOW,
    }

    report = cleanup(tree=tree, **args)

    assert report.interrupted is not None and report.exit_code == 130
    assert [d.build_id for d in report.deleted] == ["b0", "b1", "b2"]  # the one under way ends
    journal = json.loads(tree.objects[journal_path(ROOT, "r1")] or b"")
    assert journal["pending"] == [f"b{n}" for n in range(3, 8)]

    report = cleanup(tree=FakeTree(tree.objects), **args)
    assert report.exit_code == 0 and len(report.deleted) == 5


# -- orphaned runs -----------------------------------------------------------------------------


def _task(**params: str) -> jobs.Task:
    return jobs.Task(
        task_key="t",
        existing_cluster_id="0000-000000-local",
        notebook_task=jobs.NotebookTask(notebook_path="/entry", base_parameters=params),
    )


def _build_job(w: Any, name: str = "build-sample", **params: str) -> int:
    """A job shaped like the template's: build_id and build_folder job parameters."""
    return int(
        w.jobs.create(
            name=name,
            tasks=[_task(**params)],
            max_concurrent_runs=5,
            parameters=[
                jobs.JobParameterDefinition(name="build_id", default=""),
                jobs.JobParameterDefinition(name="build_folder", default=""),
            ],
        ).job_id
    )


def _ended(w: Any, run_id: int) -> bool:
    return w.jobs.get_run(run_id).state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED


def test_orphaned_runs_are_cancelled_and_a_live_run_keeps_its_build(
    server: LocalWorkspace, tmp_path: Path
) -> None:
    w = sdk_client(server)
    storage = tmp_path / "storage"
    make_build(w, storage, "sample", "live", age=timedelta(days=30))
    job_id = _build_job(w, sleep="60")
    other = _build_job(w, "nightly-etl", sleep="60")
    settings = w.jobs.get(job_id).settings.as_dict()

    def start_run(job_id: int, build_id: str) -> int:
        params = {"build_id": build_id, "build_folder": f"{ROOT}/sample/{build_id}"}
        run_id = int(w.jobs.run_now(job_id, job_parameters=params).run_id)
        running_run(w, run_id=run_id)
        return run_id

    live = start_run(job_id, "live")
    cleaned = start_run(job_id, "gone")  # its build folder no longer exists
    unrelated = start_run(other, "gone")  # not a build job: never judged

    report = library_cleanup(server, storage, options(older_than=timedelta(days=14)), now=NOW)

    assert report.cancelled == (cleaned,) and _ended(w, cleaned)
    assert not _ended(w, live) and not _ended(w, unrelated)
    assert ws_names(w, "sample") == ["_orchestrator", "live"]
    kept = {d.build.build_id: d.reason for d in report.plan.of("keep")}
    assert kept["live"] == f"run {live} is active"

    # 7 hours later the live run is an orphan (over the 6 h default): cancelled, build deleted
    report = library_cleanup(
        server, storage, options(older_than=timedelta(days=14)), now=NOW + timedelta(hours=7)
    )
    assert report.cancelled == (live,) and _ended(w, live)
    assert [d.build_id for d in report.deleted] == ["live"]
    assert ws_names(w, "sample") == ["_orchestrator"] and st_names(storage, "sample") == []
    assert not _ended(w, unrelated)
    assert w.jobs.get(job_id).settings.as_dict() == settings  # the job is never touched


def test_a_builds_job_goes_with_the_build_and_its_orphaned_run_is_cancelled(
    server: LocalWorkspace, tmp_path: Path
) -> None:
    """Each build has a job of its own (``build-<repo> <build_id>``), which outlives the
    folders the build removes at its end: cleanup deletes it with the build, ages a build
    known only by its job by the job's creation time, cancels the run of a build whose folder
    is gone, and leaves alone the jobs of another build root and jobs it did not make."""
    w = sdk_client(server)
    storage = tmp_path / "storage"
    make_build(w, storage, "sample", "old", age=timedelta(days=30))
    make_build(w, storage, "sample", "new", age=timedelta(days=1))

    def build_job(build_id: str, sleep: str, *, root: str = ROOT, tagged: bool = True) -> int:
        folder = f"{root}/sample/{build_id}"
        task = _task(build_folder=folder, build_id=build_id, sleep=sleep)
        tags = {"managed-by": "orchestrator", "build": build_id} if tagged else {}
        name = build_job_name("sample", build_id)
        return int(w.jobs.create(name=name, tags=tags, tasks=[task]).job_id)

    build_job("old", "0")
    new = build_job("new", "0")
    gone = build_job("gone", "60")  # its build ended: folders removed, the job kept
    elsewhere = build_job("other", "0", root="/Shared/elsewhere")
    untagged = build_job("hand-made", "0", tagged=False)
    orphan = int(w.jobs.run_now(gone).run_id)
    running_run(w, run_id=orphan)
    later = datetime.now(UTC) + timedelta(days=20)  # the jobs' ages come from the clock

    report = library_cleanup(server, storage, options(older_than=timedelta(days=14)), now=later)

    assert report.cancelled == (orphan,) and _ended(w, orphan)
    deleted = sorted((d.build_id, d.job, d.folder) for d in report.deleted)
    assert deleted == [("gone", True, False), ("new", True, True), ("old", True, True)]
    assert {j.job_id for j in w.jobs.list()} == {elsewhere, untagged}
    assert ws_names(w, "sample") == ["_orchestrator"]
    assert new not in {j.job_id for j in w.jobs.list()}


def test_runs_of_another_build_root_are_not_judged_by_their_folder() -> None:
    run = ActiveRun(1, "build-r", "r", "b1", "/Shared/other-root/r/b1", NOW)
    policy = Policy(keep_last=1)
    assert select_orphans([run], root=ROOT, existing=set(), policy=policy, now=NOW) == []
    ours = ActiveRun(2, "build-r", "r", "b1", f"{ROOT}/r/b1", NOW)
    assert select_orphans([ours], root=ROOT, existing=set(), policy=policy, now=NOW) == [
        (ours, "its build b1 was already cleaned")
    ]
    off = Policy(keep_last=1, orphan_after=None)
    assert select_orphans([ours], root=ROOT, existing=set(), policy=off, now=NOW) == []


# -- rate limit --------------------------------------------------------------------------------


def test_token_bucket_spaces_requests_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock=clock)
    waits = [bucket.reserve() for _ in range(5)]  # all at once, as 5 threads would
    assert waits == [0.0, 0.5, 1.0, 1.5, 2.0]
    clock.sleep(10)
    assert bucket.acquire() == 0.0  # refilled, but only up to the burst
    assert bucket.reserve() == 0.5
    assert TokenBucket(None, clock=clock).acquire() == 0.0
    # starting empty: the first request waits too (another process may just have used it)
    assert TokenBucket(4.0, initial=0, clock=clock).reserve() == 0.25


def test_token_bucket_is_thread_safe() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, burst=3, clock=clock)
    waits: list[float] = []
    threads = [threading.Thread(target=lambda: waits.append(bucket.reserve())) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == pytest.approx([0.0] * 3 + [n / 10 for n in range(1, 38)])


def test_deletes_stay_under_the_services_rate_limit(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCH_TEST_TOKEN", TOKEN)
    ws = start(tmp_path, rate_limits={"POST workspace/delete": 5.0})
    try:
        w = sdk_client(ws)
        for n in range(12):
            make_build(w, project / "storage", "sample", f"b{n}", age=timedelta(days=30))
        t0 = time.monotonic()
        assert run_cli(project, ws, "--older-than", "14d", "--rate", "5") == 0
        elapsed = time.monotonic() - t0
        assert ws.faults.snapshot()["injected"].get("rate-limit", 0) == 0
        assert elapsed >= 12 / 5 - 0.1  # 12 deletes, 5 per second, the bucket starting empty
        assert ws_names(w, "sample") == ["_orchestrator"]
    finally:
        ws.stop()


# -- safety ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag",
    [
        "build_root=/",
        "build_root=/Shared",
        "build_root=/Users/someone@example.com",
        "build_root=/Repos/someone",
        "build_root=/Workspace/Shared",
        "build_root=/Workspace/Users/someone",
        "storage.root=abfss://builds@account.dfs.core.windows.net",
        "storage.root=abfss://builds@account.dfs.core.windows.net/",
        "storage.root=/",
        "storage.root=/tmp",
    ],
)
def test_too_broad_roots_are_refused_with_one_line_and_exit_2(
    server: LocalWorkspace, project: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults.reset_counts()
    assert run_cli(project, server, "--keep-last", "0", "--set", flag) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("orchestrator: error: "), err
    assert server.faults.snapshot()["total"] == 0  # refused before any request


def test_the_repo_folder_itself_is_refused_as_storage_root(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="too broad"):
        check_storage_root(str(tmp_path), repo_root=tmp_path)
    with pytest.raises(UsageError, match="too broad"):
        check_storage_root(str(tmp_path), repo_root=tmp_path / "checkout")
    assert check_storage_root(str(tmp_path / "s"), repo_root=tmp_path) == str(tmp_path / "s")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("14d", 14 * 86400), ("36h", 36 * 3600), ("2w", 14 * 86400), ("1d12h", 36 * 3600)],
)
def test_ages(text: str, seconds: float) -> None:
    assert parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "14", "d", "14x", "-1d", "1d 2h"])
def test_bad_ages_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_age(text)


def test_bad_flags_exit_2_before_any_request(
    server: LocalWorkspace, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults.reset_counts()
    assert run_cli(project, server) == 2
    assert run_cli(project, server, "--older-than", "soon") == 2
    assert run_cli(project, server, "--keep-last", "1", "--repo", "../x") == 2
    assert run_cli(project, server, "--keep-last", "1", "--repo", "_orchestrator") == 2
    assert server.faults.snapshot()["total"] == 0
    assert "needs --older-than and/or --keep-last" in capsys.readouterr().err


# -- shared test data (_data/<sha256>) ---------------------------------------------------------


def digest(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def data_copy(storage: Path, seed: str, *, age: timedelta) -> Path:
    """A ``_data`` copy as builds leave it (read-only files), last used ``age`` ago."""
    folder = storage / "_data" / digest(seed)
    folder.mkdir(parents=True)
    (folder / "x.csv").write_text(f"a,b\n{seed},1\n")
    (folder / "x.csv").chmod(0o444)
    stamp = (NOW - age).timestamp()
    for path in (folder / "x.csv", folder):
        os.utime(path, (stamp, stamp))
    return folder


def make_data_build(
    client: Any, storage: Path, build_id: str, *, age: timedelta, seed: str | None
) -> None:
    """A build whose markers name the test data ``seed`` (None: a build without test data)."""
    make_build(client, storage, "sample", build_id, age=age)
    document = json.loads(marker("sample", build_id, NOW - age))
    document["data"] = f"_data/{digest(seed)}" if seed else None
    body = json.dumps(document).encode()
    put(client, f"{ROOT}/sample/{build_id}/_build.json", body)
    (storage / "sample" / build_id / "_build.json").write_bytes(body)


def data_names(storage: Path) -> set[str]:
    folder = storage / "_data"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_test_data_no_kept_build_uses_is_deleted_once_older_than_the_retention(
    server: LocalWorkspace, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = sdk_client(server)
    storage = project / "storage"
    make_entry(w, "sample")
    make_data_build(w, storage, "old", age=timedelta(days=30), seed="old")
    make_data_build(w, storage, "kept", age=timedelta(days=2), seed="shared")
    make_data_build(w, storage, "none", age=timedelta(days=2), seed=None)
    data_copy(storage, "old", age=timedelta(days=30))  # only the deleted build used it
    data_copy(storage, "shared", age=timedelta(days=90))  # old, but a kept build uses it
    data_copy(storage, "recent", age=timedelta(days=3))  # used by no build, but recently
    data_copy(storage, "orphan", age=timedelta(days=20))  # no build, unused for 20 days
    (storage / "_data" / "not-a-digest").mkdir()
    before = snapshot(w, storage)

    assert run_cli(project, server, "--older-than", "14d", "--dry-run", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert snapshot(w, storage) == before
    would = {d["digest"] for d in plan["data"]["delete"]}
    assert would == {digest("old"), digest("orphan")}
    kept = {d["digest"]: d["reason"] for d in plan["data"]["kept"]}
    assert kept[digest("shared")] == "used by build sample/kept"
    assert "younger than 14d" in kept[digest("recent")]
    assert {"reason": "_data/not-a-digest: not a test-data digest, left alone"} in plan["skipped"]
    assert run_cli(project, server, "--older-than", "14d", "--dry-run") == 0
    assert f"would delete _data/{digest('orphan')} (storage)" in capsys.readouterr().out

    assert run_cli(project, server, "--older-than", "14d", "--json") == 0
    done = json.loads(capsys.readouterr().out)
    assert {r["storage_prefix"] for r in done["data"]["results"] if r["deleted"]} == {
        f"_data/{digest('old')}",
        f"_data/{digest('orphan')}",
    }
    assert done["summary"]["data_copies_deleted"] == 2
    assert data_names(storage) == {digest("shared"), digest("recent"), "not-a-digest"}
    assert ws_names(w, "sample") == ["_orchestrator", "kept", "none"]
    journal = json.loads(w.workspace.download(f"{ROOT}/_orchestrator/cleanup.json").read())
    assert journal["pending"] == []


def test_a_build_still_deploying_keeps_all_test_data_and_repo_or_count_alone_never_collect(
    server: LocalWorkspace, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = sdk_client(server)
    storage = project / "storage"
    make_entry(w, "sample")
    data_copy(storage, "orphan", age=timedelta(days=40))
    make_build(w, storage, "sample", "deploying", age=None)  # folder and prefix, no marker yet
    make_build(w, storage, "sample", "leftover", age=None, workspace=False)  # its time: storage's
    assert run_cli(project, server, "--older-than", "14d", "--json") == 0
    kept = json.loads(capsys.readouterr().out)["data"]["kept"]
    assert "sample/deploying may be deploying" in kept[0]["reason"]
    assert data_names(storage) == {digest("orphan")}
    # an hour later the unmarked build is not deploying any more: the copy goes
    later = NOW + timedelta(hours=2)
    opts = options(older_than=timedelta(days=14))
    report = library_cleanup(server, storage, replace(opts, repos=("sample",)), now=later)
    assert not report.plan.data and data_names(storage) == {digest("orphan")}  # --repo: not read
    report = library_cleanup(server, storage, options(keep_last=0), now=later)
    assert report.plan.data_of("delete") == [] and data_names(storage) == {digest("orphan")}
    report = library_cleanup(server, storage, opts, now=later)
    assert [d.digest for d in report.data_deleted if d.deleted] == [digest("orphan")]
    assert data_names(storage) == set()


def test_a_killed_cleanup_s_test_data_is_finished_and_a_copy_used_meanwhile_is_kept(
    server: LocalWorkspace, project: Path, tmp_path: Path
) -> None:
    w = sdk_client(server)
    storage = project / "storage"
    tree = DatabricksWorkspace(w)
    data_copy(storage, "half", age=timedelta(0))  # half-deleted: its folder was just changed
    data_copy(storage, "used", age=timedelta(days=30))
    write_data_journal(tree, ROOT, [digest("half"), digest("gone")])
    local = LocalFolderStorage(storage)
    discovery = discover(tree, local, root=ROOT)
    assert discovery.data_journal == {digest("half"), digest("gone")}
    plan = plan_cleanup(
        discovery,
        [],
        root=ROOT,
        storage_root=str(storage),
        policy=Policy(older_than=timedelta(days=14)),
        now=NOW,
    )
    assert {d.copy.digest: d.action for d in plan.data} == {
        digest("half"): "delete",
        digest("used"): "delete",
    }
    # a build uses the old copy between the plan and the delete: it is kept
    source = tmp_path / "data"
    source.mkdir()
    (source / "x.csv").write_text("a,b\nused,1\n")
    assert local.upload_immutable(source, f"_data/{digest('used')}") == 0
    report = execute_cleanup(
        plan,
        tree=tree,
        storage=local,
        runs=NoRuns(),
        options=options(older_than=timedelta(days=14)),
    )
    by_digest = {d.digest: d for d in report.data_deleted}
    assert by_digest[digest("half")].deleted
    assert by_digest[digest("used")].kept == "used since this cleanup started"
    assert data_names(storage) == {digest("used")}
    assert read_data_journal(tree, ROOT) == frozenset()


def test_data_selection_never_takes_a_copy_a_kept_build_names() -> None:
    copies = [DataCopy(digest(s), NOW - timedelta(days=100)) for s in "abc"]
    builds = [
        Build("r", "new", created=NOW - timedelta(days=1), data=digest("a"), data_known=True),
        Build("r", "old", created=NOW - timedelta(days=50), data=digest("b"), data_known=True),
    ]
    policy = Policy(older_than=timedelta(days=14), keep_last=1)
    decisions = select_builds(builds, policy=policy, now=NOW)
    chosen = {
        d.copy.digest: d.action for d in select_data(copies, decisions, policy=policy, now=NOW)
    }
    assert chosen == {digest("a"): "keep", digest("b"): "delete", digest("c"): "delete"}
    legacy = Build("r", "legacy", created=NOW - timedelta(minutes=5))  # no `data` in its marker
    decisions = select_builds([*builds, legacy], policy=policy, now=NOW)
    assert {d.action for d in select_data(copies, decisions, policy=policy, now=NOW)} == {"keep"}
    assert marker_data('{"data": "_data/' + digest("a") + '"}') == (True, digest("a"))
    assert marker_data('{"data": null}') == (True, None)
    assert marker_data('{"data": "_data/../x"}') == (False, None)
    assert marker_data("{}") == (False, None)


# -- the property: nothing outside the build root, ever ----------------------------------------


NAMES = ["Shared", "Users", "Repos", "Workspace", "builds", "builds2", "a", "b1"]
NAMES += ["_orchestrator", "_data", "..", ".", "x y", "é", "_build.json"]
segment = st.sampled_from(NAMES)


def too_broad(root: str) -> bool:
    """The rule, restated: what a build root must not be."""
    parts = [p for p in root.split("/") if p]
    if any(p in (".", "..") for p in parts):
        return True
    inner = parts[1:] if parts[:1] == ["Workspace"] else parts
    minimum = {"Shared": 2, "Users": 3, "Repos": 3}
    return not inner or len(inner) < minimum.get(inner[0], 1)


REPOS = st.sampled_from(["r1", "r2", "b1"] * 3 + ["_orchestrator", "_data", "..", "x y"])
BUILDS = st.sampled_from(
    ["b1", "b2", "b3", "r1"] * 3 + ["_orchestrator", "_data", "..", ".", "x y"]
)
ROOTS = ["/Shared/builds", "/a", "/Users/u/ci", "/Workspace/Shared/builds", "/Repos/u/r/b"] * 3
ROOTS += ["/", "/Shared", "/Users/u", "/Repos/u", "/Workspace", "/Workspace/Users/u", "/a/.."]


SEEDS = ["a", "b", "c", "d"]
World = tuple[str, dict[str, bytes | None], dict[str, bytes], Policy, set[str]]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """A build root, a workspace tree around it, storage files, a policy and the ``_data``
    copies used recently. Builds sit where builds go (and next to it: ``<root>2``, the parent,
    deeper), with markers old and new, right and wrong, naming test data or not, and with
    reserved and unsafe names; ``_data`` holds copies old and recent, named by builds or not."""
    if draw(st.integers(0, 4)):
        root = draw(st.sampled_from(ROOTS))
    else:
        root = "/" + "/".join(draw(st.lists(segment, min_size=0, max_size=4)))
    objects: dict[str, bytes | None] = {}
    storage: dict[str, bytes] = {}
    bases = st.sampled_from([root, root, root, root.rstrip("/") + "2", "/Shared", "/Users/u"])
    for base, repo, build, days, marked, deeper in draw(
        st.lists(
            st.tuples(bases, REPOS, BUILDS, st.integers(0, 60), st.booleans(), st.booleans()),
            min_size=1,
            max_size=20,
        )
    ):
        folder = f"{base.rstrip('/')}/{repo}/{build}" + ("/deeper/b9" if deeper else "")
        _add(objects, folder + "/tests")
        objects[folder + "/tests/nb"] = b"print(1)"
        document = json.loads(marker(repo, build, NOW - timedelta(days=days)))
        seed = draw(st.sampled_from([None, "no field", *SEEDS]))
        if seed != "no field":
            document["data"] = f"_data/{digest(seed)}" if seed else None
        body = json.dumps(document).encode()
        if marked:
            objects[folder + "/_build.json"] = body
        if draw(st.booleans()):  # the storage side of it, maybe under another name
            prefix = f"{repo}/{build}" if draw(st.booleans()) else f"{build}/{repo}/{build}"
            storage[f"{prefix}/models/m.bin"] = b"x" * 10
            if draw(st.booleans()):
                storage[f"{prefix}/_build.json"] = body
    for parts in draw(st.lists(st.lists(segment, min_size=1, max_size=5), max_size=8)):
        _add(objects, draw(st.sampled_from(["", root.rstrip("/")])) + "/" + "/".join(parts))
    older_than = draw(st.sampled_from([None, timedelta(0), timedelta(days=14)]))
    keep_last = draw(st.sampled_from([0, 1, 3] + ([None] if older_than is not None else [])))
    policy = Policy(
        older_than=older_than,
        keep_last=keep_last,
        include_unmarked=draw(st.booleans()),
        min_age=draw(st.sampled_from([timedelta(0), timedelta(hours=1)])),
    )
    young: set[str] = set()
    for seed in SEEDS:
        if draw(st.booleans()):
            storage[f"_data/{digest(seed)}/x.csv"] = b"a,b\n"
            if draw(st.booleans()):
                young.add(digest(seed))
    return root, objects, storage, policy, young


def _named_data(
    root: str, objects: dict[str, bytes | None], storage: Path
) -> dict[str, tuple[str, str]]:
    """Digests named by the build markers left where builds are: -> (repo, build)."""
    found: dict[str, tuple[str, str]] = {}
    texts = [
        (path[len(root) + 1 :].split("/"), data)
        for path, data in objects.items()
        if path.startswith(root + "/") and data is not None
    ]
    texts += [
        (str(p.relative_to(storage)).split("/"), p.read_bytes())
        for p in storage.rglob("*")
        if p.is_file()
    ]
    for parts, data in texts:
        if len(parts) != 3 or parts[2] != "_build.json":
            continue
        repo, build_id = parts[0], parts[1]
        if not (is_build_name(repo) and is_build_name(build_id)):
            continue
        if not isinstance(read_marker(data.decode(), repo=repo, build_id=build_id), datetime):
            continue
        _, named = marker_data(data.decode())
        if named:
            found[named] = (repo, build_id)
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_nothing_outside_the_build_root_is_ever_deleted(world: World) -> None:
    """Nor a ``_data`` copy that a build still there names, nor one used recently."""
    import tempfile

    root, objects, files, policy, young = world
    tree = FakeTree(objects)
    with tempfile.TemporaryDirectory() as tmp:
        storage_root = Path(tmp) / "storage"
        written: set[str] = set()
        for name, data in files.items():
            if any(p in (".", "..") for p in name.split("/")):
                continue
            target = storage_root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.utime(target, (0, 0))
            written.add(name)
        for name in {n.split("/")[1] for n in written if n.startswith("_data/")}:
            stamp = NOW.timestamp() if name in young else 0
            os.utime(storage_root / "_data" / name, (stamp, stamp))
        opts = CleanupOptions(policy, rate=None, concurrency=3)
        run = lambda: cleanup(  # noqa: E731
            tree=tree,
            storage=LocalFolderStorage(storage_root),
            runs=NoRuns(),
            root=root,
            storage_root=str(storage_root),
            options=opts,
            now=NOW,
        )
        if too_broad(root):
            event("refused: too broad")
            with pytest.raises(UsageError):
                run()
            assert tree.objects == objects and not tree.deleted
            return
        check_workspace_root(root)
        report = run()
        left = {str(p.relative_to(storage_root)) for p in storage_root.rglob("*") if p.is_file()}
        named = _named_data(root.rstrip("/"), tree.objects, storage_root)

    event(f"workspace folders deleted: {min(len(tree.deleted), 3)}")
    event(f"storage prefixes deleted: {min(report.prefixes_deleted, 3)}")
    root = root.rstrip("/")
    depth = len([p for p in root.split("/") if p]) + 2
    for path in tree.deleted:
        assert path.startswith(root + "/"), path
        parts = [p for p in path.split("/") if p]
        assert len(parts) == depth, path
        assert not any(p.startswith("_") or p in (".", "..") for p in parts[depth - 2 :]), path
        assert objects.get(path, b"") is None, f"{path} was not a folder"
    # everything not under a deleted folder is still there; the journal is the only addition
    for path, kind in objects.items():
        if not any(path == d or path.startswith(d + "/") for d in tree.deleted):
            assert tree.objects.get(path, b"gone") == kind, path
    for path in set(tree.objects) - set(objects):
        assert path.endswith("/_orchestrator/cleanup.json"), path
        assert path.startswith(root + "/"), path
    deleted = {(d.repo, d.build_id) for d in report.deleted}
    copies = {d.digest for d in report.data_deleted if d.deleted}
    event(f"test-data copies deleted: {min(len(copies), 2)}")
    for gone in written - left:
        repo, build_id, _ = gone.split("/", 2)
        if repo == "_data":
            assert build_id in copies, gone
            assert build_id not in named, f"{gone} is named by the kept {named[build_id]}"
            assert policy.older_than is not None, gone
            if build_id in young:  # used at NOW: only a zero retention lets it go
                assert max(policy.older_than, policy.min_age) == timedelta(0), gone
            continue
        assert not repo.startswith("_") and not build_id.startswith("_"), gone
        assert (repo, build_id) in deleted, gone
