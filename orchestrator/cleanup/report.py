"""What ``orchestrator cleanup`` prints: the human report and the ``--json`` document.

Both list exactly what was (or, in a dry run, would be) deleted and cancelled, what was left
alone and why, and the summary: folders, prefixes and test-data copies deleted, bytes freed,
runs cancelled, time taken.
"""

from __future__ import annotations

from typing import Any

from orchestrator.cleanup.model import CleanupReport, DataDeleted, Deleted
from orchestrator.cleanup.policy import DataDecision, Decision, format_age
from orchestrator.layout import build_folder, build_job_name, build_prefix, data_prefix

__all__ = [
    "data_deleted_line",
    "deleted_line",
    "format_bytes",
    "header",
    "report_json",
    "report_lines",
]


def deleted_line(d: Deleted) -> str:
    if d.error:
        return f"failed  {d.repo}/{d.build_id}: {d.error}"
    parts = [p for p, flag in (("job", d.job), ("folder", d.folder), ("prefix", d.prefix)) if flag]
    if d.mlflow_runs:
        parts.insert(0, f"{d.mlflow_runs} MLflow run{'s' if d.mlflow_runs != 1 else ''}")
    size = f", {format_bytes(d.bytes)}" if d.prefix else ""
    return f"deleted {d.repo}/{d.build_id} ({', '.join(parts) or 'already gone'}{size})"


def data_deleted_line(d: DataDeleted) -> str:
    name = data_prefix(d.digest)
    if d.error:
        return f"failed  {name}: {d.error}"
    if d.kept:
        return f"left alone {name}: {d.kept}"
    return f"deleted {name} ({format_bytes(d.bytes) if d.deleted else 'already gone'})"


def format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def header(root: str, storage_root: str, *, dry_run: bool) -> str:
    return f"cleanup of {root} and {storage_root}" + (" (dry run)" if dry_run else "")


def _where(d: Decision) -> str:
    b = d.build
    places = (("job", b.has_job), ("workspace", b.in_workspace), ("storage", b.in_storage))
    return "+".join(w for w, flag in places if flag)


def report_lines(report: CleanupReport) -> list[str]:
    """The human report: what was (or, dry run, would be) deleted and cancelled, what was
    left alone and why, and the summary line."""
    plan = report.plan
    verb = "would"
    lines: list[str] = []
    if report.dry_run:
        lines += [f"{verb} cancel run {r.run_id} of {r.job_name}: {why}" for r, why in plan.orphans]
        lines += [
            f"{verb} delete {d.build.repo}/{d.build.build_id} ({_where(d)}): {d.reason}"
            for d in plan.of("delete")
        ]
        lines += [
            f"{verb} delete {data_prefix(d.copy.digest)} (storage): {d.reason}"
            for d in plan.data_of("delete")
        ]
    lines += [f"left alone {d.build.repo}/{d.build.build_id}: {d.reason}" for d in plan.of("skip")]
    lines += [f"left alone {note}" for note in plan.notes]
    lines += [f"error: {e}" for e in report.errors]
    kept = len(plan.of("keep"))
    if report.dry_run:
        copies = len(plan.data_of("delete"))
        data = f", {_n(copies, 'test-data copy', 'test-data copies')}" if copies else ""
        lines.append(
            f"dry run: {_n(len(plan.of('delete')), 'build')}{data} and "
            f"{_n(len(plan.orphans), 'run')} selected, {_n(kept, 'build')} kept, "
            f"nothing changed ({report.seconds:.1f} s)"
        )
    else:
        status = f"interrupted by {report.interrupted}: " if report.interrupted else ""
        copies = report.data_copies_deleted
        data = f", {_n(copies, 'test-data copy', 'test-data copies')}" if copies else ""
        lines.append(
            f"{status}deleted {_n(report.folders_deleted, 'folder')}{data} and "
            f"{_n(report.prefixes_deleted, 'prefix', 'prefixes')} "
            f"({format_bytes(report.bytes_freed)} freed), "
            f"cancelled {_n(len(report.cancelled), 'run')}, kept {_n(kept, 'build')} "
            f"in {report.seconds:.1f} s"
        )
    return lines


def report_json(report: CleanupReport) -> dict[str, Any]:
    """The ``--json`` document."""
    plan = report.plan

    def build(d: Decision) -> dict[str, Any]:
        b = d.build
        return {
            "repo": b.repo,
            "build_id": b.build_id,
            "workspace_folder": build_folder(plan.root, b.repo, b.build_id)
            if b.in_workspace
            else None,
            "storage_prefix": build_prefix(b.repo, b.build_id) if b.in_storage else None,
            "job": build_job_name(b.repo, b.build_id) if b.has_job else None,
            "created": b.created.isoformat() if b.created else None,
            "age": format_age(d.age) if d.age is not None else None,
            "age_seconds": int(d.age.total_seconds()) if d.age is not None else None,
            "reason": d.reason,
        }

    def copy(d: DataDecision) -> dict[str, Any]:
        return {
            "storage_prefix": data_prefix(d.copy.digest),
            "digest": d.copy.digest,
            "modified": d.copy.modified.isoformat() if d.copy.modified else None,
            "age": format_age(d.age) if d.age is not None else None,
            "age_seconds": int(d.age.total_seconds()) if d.age is not None else None,
            "reason": d.reason,
        }

    return {
        "dry_run": report.dry_run,
        "build_root": plan.root,
        "storage_root": plan.storage_root,
        "delete": [build(d) for d in plan.of("delete")],
        "cancel": [
            {
                "run_id": r.run_id,
                "job": r.job_name,
                "build_id": r.build_id,
                "started": r.started.isoformat() if r.started else None,
                "url": r.url,
                "reason": why,
            }
            for r, why in plan.orphans
        ],
        "skipped": [build(d) for d in plan.of("skip")] + [{"reason": n} for n in plan.notes],
        "kept": [build(d) for d in plan.of("keep")],
        "data": {
            "delete": [copy(d) for d in plan.data_of("delete")],
            "kept": [copy(d) for d in plan.data_of("keep")],
            "results": [
                {
                    "storage_prefix": data_prefix(d.digest),
                    "deleted": d.deleted,
                    "bytes": d.bytes,
                    "kept": d.kept,
                    "error": d.error,
                }
                for d in report.data_deleted
            ],
        },
        "results": [
            {
                "repo": d.repo,
                "build_id": d.build_id,
                "folder_deleted": d.folder,
                "prefix_deleted": d.prefix,
                "bytes": d.bytes,
                "error": d.error,
            }
            for d in report.deleted
        ],
        "summary": {
            "folders_deleted": report.folders_deleted,
            "prefixes_deleted": report.prefixes_deleted,
            "data_copies_deleted": report.data_copies_deleted,
            "bytes_freed": report.bytes_freed,
            "runs_cancelled": len(report.cancelled),
            "runs_unconfirmed": list(report.unconfirmed),
            "seconds": round(report.seconds, 3),
            "errors": list(report.errors),
            "interrupted": str(report.interrupted) if report.interrupted else None,
            "exit_code": report.exit_code,
        },
    }
