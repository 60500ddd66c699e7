"""The MLflow runs a task logged, on its page: run, experiment, parameters, metrics, models.

A Databricks job run's page links the MLflow runs its notebook logged; here the task page
lists them, read from the tracking server only when it is already running
(``MlflowApi.runs_of_task``), so a page never starts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.local.ui.shell import esc

__all__ = ["mlflow_runs_section"]


def _pairs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{esc(k)}={esc(v)}" for k, v in sorted(values.items()))


def mlflow_runs_section(runs: Sequence[Mapping[str, Any]]) -> str:
    """An ``MLflow runs`` section, or nothing when the task logged none."""
    if not runs:
        return ""
    rows = "".join(
        f'<tr><td class="mono">{esc(run.get("run_name") or run.get("run_id"))}</td>'
        f'<td class="mono">{esc(run.get("experiment"))}</td>'
        f"<td>{esc(run.get('status'))}</td>"
        f"<td>{_pairs(run.get('params') or {})}</td>"
        f"<td>{_pairs(run.get('metrics') or {})}</td>"
        f"<td>{esc(', '.join(run.get('models') or []))}</td></tr>"
        for run in runs
    )
    return (
        '<h2>MLflow runs</h2><table class="tasks" id="mlflow-runs"><thead><tr><th>Run</th>'
        "<th>Experiment</th><th>Status</th><th>Parameters</th><th>Metrics</th><th>Models</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )
