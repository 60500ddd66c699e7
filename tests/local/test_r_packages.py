"""The R packages of the runtime profiles: one list, its table in docs/ and .ci/setup's.

``orchestrator/local/runtime/r_packages.py`` is the list; ``docs/r-packages.md`` holds its
table and ``.ci/setup`` installs its Debian packages (a shell array, since the script runs
before any Python environment exists). These tests keep the three equal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.local.runtime import r_packages

pytestmark = pytest.mark.fast

REPO = Path(__file__).resolve().parents[2]
TIDYVERSE_CORE = ("dplyr", "tidyr", "purrr", "stringr", "readr", "tibble", "ggplot2")


def test_the_docs_table_is_rendered_from_the_list() -> None:
    text = (REPO / "docs" / "r-packages.md").read_text(encoding="utf-8")
    between = re.search(r"<!-- r-packages:begin[^>]*-->\n(.*)<!-- r-packages:end -->", text, re.S)
    assert between is not None
    assert between.group(1) == r_packages.markdown_table()


def test_ci_setup_installs_every_debian_package_of_the_list() -> None:
    script = (REPO / ".ci" / "setup").read_text(encoding="utf-8")
    array = re.search(r"^r_packages=\(([^)]*)\)", script, re.M)
    assert array is not None
    names = array.group(1).split()
    # setup turns an R name into Debian's r-cran-<lowercase name>
    assert tuple(f"r-cran-{name.lower()}" for name in names) == r_packages.DEBIAN_PACKAGES


def test_the_tidyverse_core_and_jsonlite_lubridate_come_from_debian() -> None:
    for name in (*TIDYVERSE_CORE, "jsonlite", "lubridate"):
        assert r_packages.debian_package(name) == f"r-cran-{name}"


def test_gaps_name_no_debian_package_and_say_why() -> None:
    assert {p.name for p in r_packages.GAPS} >= {"sparklyr", "SparkR"}
    assert all(p.note for p in r_packages.GAPS)
    assert r_packages.debian_package("sparklyr") is None
    assert r_packages.debian_package("not-a-listed-package") is None
