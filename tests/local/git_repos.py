"""Git repositories for the tests of Git folders and ``git_source`` runs, made with ``git init``
in the test's temporary folder (the local workspace never reaches a remote).

:func:`make_repo` makes the repository the issue describes: a package at the root
(``my_package``), a notebook that imports it with no ``sys.path`` edit and ``%run``s a helper
beside it, and a data file; each commit's author and dates are fixed by the environment so
nothing depends on the machine's git configuration.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["USE_PACKAGE", "commit_file", "git", "make_repo"]

USE_PACKAGE = """\
# Databricks notebook source
# MAGIC %run ./helper

# COMMAND ----------

import json
import os

import my_package

# COMMAND ----------

dbutils.notebook.exit(json.dumps({"value": my_package.VALUE, "helper": HELPER, "cwd": os.getcwd()}))
"""
HELPER = """\
# Databricks notebook source
HELPER = "from the helper"
"""
_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """``git args`` in ``repo``; its output, stripped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | _ENV
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit_file(repo: Path, relative: str, text: str, message: str = "change") -> str:
    """Write ``relative`` in ``repo``, commit it on the current branch; the new commit."""
    path = repo / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    git(repo, "add", relative)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(root: Path, name: str = "src") -> Path:
    """A repository on branch ``main`` with ``my_package/`` at its root, ``notebooks/``
    (``use_package`` and ``helper``, source notebooks), ``other/notes.txt`` and ``data.csv``."""
    repo = root / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    files = {
        "my_package/__init__.py": "VALUE = 42\n",
        "notebooks/use_package.py": USE_PACKAGE,
        "notebooks/helper.py": HELPER,
        "other/notes.txt": "notes\n",
        "data.csv": "a,b\n1,2\n",
    }
    for relative, text in files.items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo
