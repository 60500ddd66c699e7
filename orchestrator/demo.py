"""``orchestrator local demo``: the sample project's notebooks run as one job on a local workspace.

It starts a local workspace, deploys ``databricks/`` to a build folder through databricks-sdk,
runs a job with the two test notebooks in parallel and the scoring notebook, prints live task
states and the JUnit counts the notebooks wrote. It is a showcase of the local workspace; the
product's full flow is ``orchestrator build``.
"""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TextIO

from orchestrator.errors import EXIT_OK, EXIT_TESTS_FAILED, UsageError

__all__ = ["run_demo"]

CLUSTER_ID = "0000-000000-local"


def _upload(client: object, local: Path, remote: str) -> int:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.workspace import ImportFormat

    assert isinstance(client, WorkspaceClient)
    client.workspace.mkdirs(remote)
    count = 0
    for path in sorted(local.rglob("*")):
        rel = path.relative_to(local).as_posix()
        if "__pycache__" in rel or any(p.startswith(".") for p in path.relative_to(local).parts):
            continue
        if path.is_dir():
            client.workspace.mkdirs(f"{remote}/{rel}")
        else:
            # import_ (JSON) is retried by the SDK on 429/503; its multipart upload() is not.
            client.workspace.import_(
                f"{remote}/{rel}",
                content=base64.b64encode(path.read_bytes()).decode(),
                format=ImportFormat.AUTO,
                overwrite=True,
            )
            count += 1
    return count


def _life_cycle(task: object) -> str:
    state = getattr(task, "state", None)
    life_cycle = getattr(state, "life_cycle_state", None)
    return str(life_cycle.value) if life_cycle is not None else "?"


def _junit_counts(path: Path) -> tuple[int, int]:
    root = ET.parse(path).getroot()  # noqa: S314
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", "0")) for s in suites)
    failed = sum(int(s.get("failures", "0")) + int(s.get("errors", "0")) for s in suites)
    return tests, failed


def run_demo(repo: Path, work_dir: Path, out: TextIO) -> int:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service import jobs

    from orchestrator.local import start_local_workspace

    notebooks = repo / "databricks"
    model = repo / "models" / "churn_model.rds"
    if not notebooks.is_dir() or not model.is_file():
        raise UsageError(f"{repo}: no sample project here (needs databricks/ and models/)")
    results = (work_dir / "results").resolve()
    results.mkdir(parents=True, exist_ok=True)
    for old in results.glob("*.xml"):
        old.unlink()
    started = time.monotonic()
    with start_local_workspace(work_dir / "workspace", cluster_start_delay=0.5) as ws:
        client = WorkspaceClient(host=ws.url, token=ws.token, auth_type="pat")
        folder = f"/Shared/builds/{repo.resolve().name}/demo-{int(time.time())}"
        count = _upload(client, notebooks, folder)
        print(f"deployed {count} files to {folder} on {ws.url}", file=out)

        def task(key: str, path: str, **params: str) -> jobs.Task:
            return jobs.Task(
                task_key=key,
                existing_cluster_id=CLUSTER_ID,
                notebook_task=jobs.NotebookTask(
                    notebook_path=f"{folder}/{path}", base_parameters=params
                ),
                timeout_seconds=600,
            )

        job = client.jobs.create(
            name=f"build-{repo.resolve().name}",
            tasks=[
                task("run_pytest", "tests/run_pytest", results_dir=str(results)),
                task(
                    "run_testthat",
                    "tests/run_testthat",
                    results_dir=str(results),
                    model_path=str(model.resolve()),
                ),
                task("score_customers", "score_customers", model_path=str(model.resolve())),
            ],
            max_concurrent_runs=4,
        )
        assert job.job_id is not None
        run_id = client.jobs.run_now(job.job_id).run_id
        run = client.jobs.get_run(run_id)
        print(f"run {run_id}: {run.run_page_url}", file=out)
        last = ""
        while run.state and run.state.life_cycle_state not in (
            jobs.RunLifeCycleState.TERMINATED,
            jobs.RunLifeCycleState.INTERNAL_ERROR,
            jobs.RunLifeCycleState.SKIPPED,
        ):
            line = ", ".join(f"{t.task_key}: {_life_cycle(t)}" for t in run.tasks or [])
            if line != last:
                print(f"  {line}", file=out)
                last = line
            time.sleep(0.5)
            run = client.jobs.get_run(run_id)
        print(f"\n{'task':<18} {'result':<10} {'seconds':>8}  output", file=out)
        for t in run.tasks or []:
            assert t.run_id is not None
            output = client.jobs.get_run_output(t.run_id)
            result = t.state.result_state.value if t.state and t.state.result_state else "?"
            shown = (output.notebook_output.result if output.notebook_output else None) or (
                output.error or ""
            )
            seconds = ((t.end_time or 0) - (t.start_time or 0)) / 1000
            print(f"{t.task_key:<18} {result:<10} {seconds:>8.1f}  {shown[:80]}", file=out)
    total_tests = total_failed = 0
    for xml in sorted(results.glob("*.xml")):
        tests, failed = _junit_counts(xml)
        total_tests += tests
        total_failed += failed
        print(f"{xml.name}: {tests} tests, {failed} failed", file=out)
    ok = bool(run.state and run.state.result_state == jobs.RunResultState.SUCCESS)
    print(
        f"\n{'PASSED' if ok else 'FAILED'}: {total_tests} tests, {total_failed} failed, "
        f"{time.monotonic() - started:.1f} s; JUnit XML in {results}",
        file=out,
    )
    return EXIT_OK if ok else EXIT_TESTS_FAILED
