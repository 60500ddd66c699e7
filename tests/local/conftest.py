"""Fixtures of the local workspace's tests (the suite's shared ones are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.local.runtime_helpers import Workspace


@pytest.fixture
def runtime(tmp_path: Path) -> Workspace:
    """A workspace folder, DBFS folder and store database on disk for the notebook runtime,
    which runs notebooks from them in real kernels (no server)."""
    return Workspace(tmp_path)
