"""Where the benchmarks find the repository (the sample project, docs/, the legacy CLI's venv).

A module of its own, importing nothing from bench, so every bench module can use it without an
import cycle (``harness`` refers to ``legacy``'s types, and ``legacy`` needs the path).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["REPO"]

REPO = Path(__file__).resolve().parents[1]
