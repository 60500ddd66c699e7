"""Build hook, beside pyproject.toml (which holds everything else).

The CI pipeline templates live in ``devops/``, where teams copy them from and this repo's own
checks read them. Package data must be inside the package, so the build copies them into the
wheel as ``orchestrator/scaffold/pipeline_templates/``: ``orchestrator init --pipelines`` then
works from an installed package too, not only from a checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "devops"


class BuildWithPipelineTemplates(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "orchestrator" / "scaffold" / "pipeline_templates"
        for source in sorted(TEMPLATES.rglob("*.yml")):
            copy = target / source.relative_to(TEMPLATES)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)


setup(cmdclass={"build_py": BuildWithPipelineTemplates})
