"""``orchestrator init``: scaffold a build setup (``orchestrator.yml``, ``job-template.json``,
optionally CI pipelines) from what a repo holds. :mod:`.detect` reads the repo,
:mod:`.render` writes the files' text, :mod:`.command` ties them together."""

from __future__ import annotations

from orchestrator.scaffold.command import InitOptions, init_command

__all__ = ["InitOptions", "init_command"]
