"""``--changed-since REF``: which test tasks a change affects.

A task runs when a file changed since ``REF`` (``git diff --name-only REF...HEAD`` plus
uncommitted changes) is:

- the job template or the config file, test data or a model: every task;
- the task's own notebook (its ``notebook_path`` relative to the build, or the ``notebook``
  parameter of a task written for the old entry notebook), or a file in the test-scripts
  folder its ``tests_dir`` (``arg.tests_dir``) parameter names;
- another file under the notebooks folder in the task notebook's language (``.py`` for a Python
  notebook, ``.r``/``.R`` for an R one); files of other types affect every task.

Files outside these paths (docs, pipelines) affect nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.config.schema import BuildConfig

__all__ = ["changed_files", "select_tasks"]

_LANG_EXT = {"python": (".py",), "r": (".r",)}


def changed_files(root: Path, since: str) -> list[Path]:
    def git(*args: str) -> list[str]:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=60
            )
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise UsageError(f"--changed-since {since}: git failed: {detail.strip()}") from None
        return [line for line in done.stdout.splitlines() if line.strip()]

    names = git("diff", "--name-only", f"{since}...HEAD")
    names += git("diff", "--name-only", "HEAD")
    names += git("ls-files", "--others", "--exclude-standard")
    return sorted({(root / n).resolve() for n in names})


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def select_tasks(
    settings: dict[str, Any], *, config: BuildConfig, since: str, files: list[Path] | None = None
) -> tuple[str, ...]:
    root = config.root
    changed = changed_files(root, since) if files is None else files
    optional = (config.paths.test_data, config.paths.models)
    everything = [config.paths.job_template.resolve()]
    everything += [p.resolve() for p in optional if p is not None]
    if config.config_file is not None:
        everything.append(config.config_file.resolve())
    notebooks = config.paths.notebooks.resolve()
    selected: list[str] = []
    for task in settings["tasks"]:
        key = str(task["task_key"])
        notebook_task = task.get("notebook_task") or {}
        params = notebook_task.get("base_parameters") or {}
        notebook_path = str(notebook_task.get("notebook_path", ""))
        relative = notebook_path
        if notebook_path.startswith("/"):  # a task written for the old entry notebook
            relative = str(params.get("notebook", ""))
        candidates = [notebooks / (relative + ext) for ext in (".py", ".r", ".R", ".sql", ".scala")]
        notebook = next((c for c in candidates if c.exists()), None)
        language = "r" if notebook is not None and notebook.suffix.lower() == ".r" else "python"
        tests_dir = str(params.get("tests_dir") or params.get("arg.tests_dir") or "").rstrip("/")
        scripts = [
            p.resolve() for p in config.paths.test_scripts if tests_dir.endswith("/" + p.name)
        ]
        for path in changed:
            own = notebook is not None and path == notebook.resolve()
            if own or any(_inside(path, e) for e in everything + scripts):
                hit = True
            elif _inside(path, notebooks):
                ext = path.suffix.lower()
                hit = ext in _LANG_EXT[language] or ext not in (".py", ".r")
            else:
                hit = False
            if hit:
                selected.append(key)
                break
    return tuple(selected)
