"""The R packages of a Databricks Runtime that R notebooks here get, and where they come from.

A Databricks Runtime ships R with a few hundred CRAN packages (the release notes' "Installed R
libraries" table, one per runtime); R test notebooks load the tidyverse without installing it.
The local workspace cannot download CRAN packages, so the machine's R gets them from Debian's
``r-cran-*`` packages, installed by ``.ci/setup``: this list is what it installs, and the table
in ``docs/r-packages.md`` is rendered from it (tests keep the script's list, which runs before
any Python environment exists, and the table equal to it). In a notebook,
``install.packages()`` and ``library()`` name the Debian package of a package that is missing.

Every profile of ``spark_versions.py`` gets the same set: this machine has one R. Versions are
Debian 12's, older than a runtime's (a runtime takes a CRAN snapshot of its release date); the
gaps are in :data:`GAPS`. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEBIAN_PACKAGES",
    "GAPS",
    "PACKAGES",
    "RELEASE_NOTES",
    "RPackage",
    "debian_package",
    "markdown_table",
]

#: where the list of a runtime's R packages is published (one page per runtime)
RELEASE_NOTES = "https://docs.databricks.com/aws/en/release-notes/runtime/15.4lts"


@dataclass(frozen=True)
class RPackage:
    """An R package a Databricks Runtime includes, and the Debian package that provides it
    here (``""`` when Debian has none: a gap). ``debian_version`` is Debian 12's (bookworm),
    measured with ``apt-cache policy``; ``note`` says what differs from the runtime."""

    name: str
    debian: str
    debian_version: str = ""
    note: str = ""


PACKAGES: tuple[RPackage, ...] = (
    # the tidyverse core: what R test notebooks load first
    RPackage(
        "dplyr",
        "r-cran-dplyr",
        "1.0.10",
        "older than the runtimes' 1.1.x: no `.by`, `join_by()`, `reframe()` or `pick()`",
    ),
    RPackage("tidyr", "r-cran-tidyr", "1.3.0"),
    RPackage("purrr", "r-cran-purrr", "1.0.1"),
    RPackage("stringr", "r-cran-stringr", "1.5.0"),
    RPackage("readr", "r-cran-readr", "2.1.4"),
    RPackage("tibble", "r-cran-tibble", "3.1.8"),
    RPackage("ggplot2", "r-cran-ggplot2", "3.4.1"),
    RPackage("forcats", "r-cran-forcats", "1.0.0"),
    RPackage("lubridate", "r-cran-lubridate", "1.9.2"),
    RPackage("jsonlite", "r-cran-jsonlite", "1.8.4"),
    # what the tidyverse and test notebooks lean on
    RPackage("magrittr", "r-cran-magrittr", "2.0.3"),
    RPackage("glue", "r-cran-glue", "1.6.2"),
    RPackage("rlang", "r-cran-rlang", "1.0.6"),
    RPackage("tidyselect", "r-cran-tidyselect", "1.2.0"),
    RPackage("hms", "r-cran-hms", "1.1.2"),
    RPackage("withr", "r-cran-withr", "2.5.0"),
    RPackage("R6", "r-cran-r6", "2.5.1"),
    RPackage("data.table", "r-cran-data.table", "1.14.8"),
    RPackage("DBI", "r-cran-dbi", "1.1.3"),
    RPackage("httr", "r-cran-httr", "1.4.5"),
    RPackage("xml2", "r-cran-xml2", "1.3.3"),
    RPackage("testthat", "r-cran-testthat", "3.1.6"),
    RPackage(
        "IRkernel", "r-cran-irkernel", "1.3.2", note="not a runtime package: runs R notebooks here"
    ),
    # gaps: no Debian package
    RPackage(
        "sparklyr",
        "",
        note=(
            "no Debian package and CRAN is unreachable: `library(sparklyr)` loads a stand-in "
            "whose `spark_connect()` says R has no local Spark (the real one is loaded, with "
            "the same `spark_connect()`, where it is installed); 16.4 LTS has it in its Scala "
            "2.12 image only"
        ),
    ),
    RPackage(
        "SparkR",
        "",
        note="ships with Spark, not CRAN; deprecated by Databricks: refused with one line",
    ),
    RPackage("arrow", "", note="no Debian 12 package"),
)

#: the packages with no Debian package here
GAPS: tuple[RPackage, ...] = tuple(p for p in PACKAGES if not p.debian)

#: what ``.ci/setup`` installs with ``apt-get``
DEBIAN_PACKAGES: tuple[str, ...] = tuple(p.debian for p in PACKAGES if p.debian)


def debian_package(name: str) -> str | None:
    """The Debian package of an R package of the list, or None (a gap, or not listed)."""
    return next((p.debian or None for p in PACKAGES if p.name == name), None)


def markdown_table() -> str:
    """The table ``docs/r-packages.md`` holds between its markers."""
    lines = ["| R package | Debian package | Debian 12 version | notes |", "|---|---|---|---|"]
    for package in PACKAGES:
        debian = f"`{package.debian}`" if package.debian else "none"
        version = package.debian_version or "-"
        lines.append(f"| {package.name} | {debian} | {version} | {package.note} |")
    return "\n".join(lines) + "\n"
