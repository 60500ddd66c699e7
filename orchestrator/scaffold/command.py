"""``orchestrator init``: look at the repo, write what a build needs, say what was done.

Nothing is overwritten without ``force``; every file is checked before the first is written,
so an init either writes all its files or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from orchestrator.errors import EXIT_OK, UsageError
from orchestrator.files import write_atomically
from orchestrator.scaffold.detect import Findings, Notebook, scan
from orchestrator.scaffold.pipelines import Pipeline, pipeline_files
from orchestrator.scaffold.render import render_config, render_template, task_keys

__all__ = ["InitOptions", "init_command"]

_GITIGNORE_LINES = (".orchestrator/", "test-results/", "artifacts/")


@dataclass(frozen=True)
class InitOptions:
    root: Path
    all_notebooks: bool = False
    pipelines: Pipeline | None = None
    force: bool = False


def init_command(options: InitOptions, *, out: TextIO) -> int:
    """Scan ``options.root``, write orchestrator.yml, job-template.json (and pipelines)."""
    root = options.root.resolve()
    found = scan(root)
    _report_findings(found, out)
    notebooks = found.notebooks if options.all_notebooks else found.runners
    if not notebooks:
        hint = "" if options.all_notebooks else "; --all-notebooks runs every notebook instead"
        what = "notebook" if options.all_notebooks else "test runner notebook"
        raise UsageError(f"{root}: no {what} found (nothing for the job to run){hint}")
    files = {
        "orchestrator.yml": render_config(found),
        "job-template.json": render_template(notebooks),
    }
    if options.pipelines is not None:
        files.update(pipeline_files(options.pipelines))
    existing = [name for name in files if (root / name).exists()]
    if existing and not options.force:
        raise UsageError(
            f"{', '.join(existing)} already exist{'s' * (len(existing) == 1)} in {root}; "
            "nothing was written (--force overwrites)"
        )
    for name, text in files.items():
        write_atomically(root / name, text.encode())
    gitignore = _ignore_outputs(root)
    out.write("\nwrote:\n")
    for name in files:
        out.write(f"  {name}{' (overwritten)' if name in existing else ''}\n")
    if gitignore:
        out.write(f"  .gitignore (+ {', '.join(gitignore)})\n")
    out.write("\njob tasks:\n")
    for key, notebook in zip(task_keys(notebooks), notebooks, strict=True):
        out.write(f"  {key}: {notebook.path.as_posix()}\n")
    out.write("\nnext: orchestrator plan    (what a build would do; changes nothing)\n")
    out.write("      orchestrator build   (on the local workspace)\n")
    if options.pipelines is not None:
        out.write("      then uncomment the dev/prod targets in orchestrator.yml for the CI\n")
    return EXIT_OK


def _report_findings(found: Findings, out: TextIO) -> None:
    def names(items: list[Notebook]) -> str:
        return ", ".join(n.path.as_posix() for n in items) or "none"

    def folders(items: list[Path]) -> str:
        return ", ".join(p.as_posix() for p in items) or "none"

    out.write("found:\n")
    out.write(f"  notebooks ({len(found.notebooks)}): {names(found.notebooks)}\n")
    out.write(f"  test runner notebooks ({len(found.runners)}): {names(found.runners)}\n")
    out.write(f"  pytest folders: {folders(found.pytest)}\n")
    out.write(f"  testthat folders: {folders(found.testthat)}\n")
    out.write(f"  data folders: {folders(found.data)}\n")
    out.write(f"  model folders: {folders(found.models)}\n")
    if found.root_imports:
        out.write(
            f"  imported from the repo root: {', '.join(found.root_imports)} (a Git deploy mode "
            "puts the root on sys.path: see deploy.mode in orchestrator.yml)\n"
        )


def _ignore_outputs(root: Path) -> list[str]:
    """Add the orchestrator's outputs to the repo's .gitignore; the lines added."""
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in _GITIGNORE_LINES if line not in present]
    if missing:
        prefix = "" if not text or text.endswith("\n") else "\n"
        block = "# orchestrator outputs\n" + "".join(f"{line}\n" for line in missing)
        write_atomically(path, (text + prefix + block).encode())
    return missing
