"""The per-repo entry notebook that every task of the repo's job points at.

A job's ``notebook_path`` cannot change per run, so the job runs this small, stable notebook;
it receives the build folder and the notebook to run as parameters, forwards every ``arg.<name>``
parameter to that notebook as ``<name>`` and runs it with ``dbutils.notebook.run``, so concurrent
builds of one repo never overwrite each other. The child's exit value is passed through; a
failing child fails the task with the child's error.
"""

from __future__ import annotations

__all__ = ["ENTRY_SOURCE"]

ENTRY_SOURCE = """# Databricks notebook source
# MAGIC %md
# MAGIC # Build entry notebook (managed by the orchestrator; edits are overwritten)
# MAGIC
# MAGIC Runs `<build_folder>/<notebook>` with every `arg.<name>` parameter passed as `<name>`.

# COMMAND ----------

dbutils.widgets.text("build_folder", "")
dbutils.widgets.text("notebook", "")
dbutils.widgets.text("notebook_timeout_seconds", "0")

# COMMAND ----------

build_folder = dbutils.widgets.get("build_folder").rstrip("/")
notebook = dbutils.widgets.get("notebook").strip("/")
if not build_folder or not notebook:
    raise ValueError("build_folder and notebook parameters are required")
arguments = {
    name[len("arg."):]: value
    for name, value in dbutils.widgets.getAll().items()
    if name.startswith("arg.")
}
path = f"{build_folder}/{notebook}"
print(f"running {path} with {sorted(arguments)}")
result = dbutils.notebook.run(
    path, int(dbutils.widgets.get("notebook_timeout_seconds") or 0), arguments
)

# COMMAND ----------

dbutils.notebook.exit(result)
"""
