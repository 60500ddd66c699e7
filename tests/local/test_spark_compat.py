"""The Spark compatibility suite: typical Databricks notebook operations run in a notebook on
the local workspace (real kernel, Sail engine), each one works, is translated or emulated by
the kernel's compatibility layer, or is refused with the reason and what to use instead.

The suite writes its table into docs/spark.md: ``ORCH_WRITE_COMPAT_TABLE=1 pytest
tests/local/test_spark_compat.py`` rewrites it, and the test fails when the committed table
is not what the suite finds (so CI, which runs it, keeps the docs true).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import Language

from tests.local.runtime_helpers import source
from tests.tools import require_spark

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

require_spark()

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "spark.md"
OPS = Path(__file__).with_name("spark_compat_ops.py")
START = "<!-- compatibility table: written by tests/local/test_spark_compat.py -->"
END = "<!-- end of the compatibility table -->"
STATUS_ORDER = ("works", "translated", "emulated", "refused")


def compat_table(results: dict[str, dict[str, str]], engine: str) -> str:
    counts = {s: sum(r["status"] == s for r in results.values()) for s in STATUS_ORDER}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    lines = [
        START,
        f"{len(results)} operations on {engine}: {summary}.",
        "",
        "| area | operation | local engine | how, or why not and what to use instead |",
        "|---|---|---|---|",
    ]
    for name, result in results.items():
        detail = result["detail"].replace("|", "\\|")
        lines.append(f"| {result['area']} | {name} | {result['status']} | {detail} |")
    lines.append(END)
    return "\n".join(lines)


def test_the_compatibility_suite_passes_and_the_docs_show_its_table(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    notebook = source(
        OPS.read_text(encoding="utf-8"),
        "import json\n"
        "from orchestrator.local.kernel.engine_errors import engine_name\n"
        f"results = run_compat(spark, globals(), {str(tmp_path / 'scratch')!r})\n"
        "dbutils.notebook.exit(json.dumps({'engine': engine_name(), 'results': results}))",
    )
    client.workspace.mkdirs("/compat")
    client.workspace.upload("/compat/ops", notebook.encode(), language=Language.PYTHON)
    run = client.jobs.submit(
        run_name="compat",
        tasks=[
            jobs.SubmitTask(
                task_key="compat",
                existing_cluster_id="0000-000000-local",
                notebook_task=jobs.NotebookTask(notebook_path="/compat/ops"),
            )
        ],
    ).result(timeout=timedelta(seconds=600))
    output = client.jobs.get_run_output(run.tasks[0].run_id)
    assert output.notebook_output and output.notebook_output.result, (
        output.error,
        output.error_trace,
    )
    found = json.loads(output.notebook_output.result)
    results: dict[str, dict[str, str]] = found["results"]
    failing = {name: r["detail"] for name, r in results.items() if r["status"] == "fails"}
    assert not failing, json.dumps(failing, indent=1)
    assert len(results) >= 40
    assert {r["status"] for r in results.values()} == set(STATUS_ORDER)
    for name, result in results.items():
        if result["status"] != "works":
            assert result["detail"], name  # how, or why not and what instead
    table = compat_table(results, found["engine"])
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text, f"{DOC} has no compatibility table markers"
    current = text[text.index(START) : text.index(END) + len(END)]
    if current != table and os.environ.get("ORCH_WRITE_COMPAT_TABLE") == "1":
        DOC.write_text(text.replace(current, table), encoding="utf-8")
        current = table
    assert current == table, (
        "docs/spark.md's compatibility table is not what the suite finds: run "
        "ORCH_WRITE_COMPAT_TABLE=1 pytest tests/local/test_spark_compat.py\n" + table
    )
