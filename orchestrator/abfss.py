"""``abfss://`` URLs: the one parser for the config's storage root, ADLS storage and cleanup.

``abfss://<container>@<account>.dfs.<suffix>/<prefix>`` names a folder in an ADLS Gen2
container. Three places read these URLs and must agree on them:

* the config (:class:`~orchestrator.config.schema.StorageConfig`) accepts a root whose container
  is a valid name, with any host (:func:`split_abfss`);
* ADLS storage (:mod:`orchestrator.storage.adls`) needs the account and the cloud's DNS suffix
  from a ``<account>.dfs.<suffix>`` host (:func:`parse_abfss`);
* cleanup (:func:`orchestrator.cleanup.policy.check_storage_root`) refuses a bare container.

Pure functions of strings: nothing imported beyond the standard library and the project's
errors (no Azure SDK), so the config and the CLI can use it for free. It sits beside the stages
rather than in ``storage/``: the storage package reads the config, so the config must not import
the storage package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.errors import UsageError

__all__ = ["SCHEME", "AbfssLocation", "AbfssUrl", "is_abfss", "parse_abfss", "split_abfss"]

SCHEME = "abfss://"
_ABFSS = re.compile(
    r"abfss://(?P<container>[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?)"
    r"@(?P<host>[A-Za-z0-9.-]+(?::\d+)?)(?P<path>/[^?#]*)?"
)
_DFS_HOST = re.compile(r"(?P<account>[a-z0-9]{3,24})\.dfs\.(?P<suffix>[A-Za-z0-9.-]+)")


def is_abfss(location: str) -> bool:
    """Whether ``location`` is meant as an ``abfss://`` URL (well-formed or not)."""
    return location.startswith(SCHEME)


@dataclass(frozen=True)
class AbfssUrl:
    """An ``abfss://`` URL split into its parts; the host is not checked beyond its characters."""

    container: str
    host: str  # <account>.dfs.<suffix>, or an emulator's host[:port]
    segments: tuple[str, ...]  # the path's non-empty segments as written ('.' and '..' kept)

    @property
    def normalized(self) -> bool:
        """Whether the path has no ``.`` or ``..`` segment."""
        return not any(s in (".", "..") for s in self.segments)


def split_abfss(url: str) -> AbfssUrl | None:
    """The parts of ``abfss://<container>@<host>/<path>``, or None when it is not one."""
    match = _ABFSS.fullmatch(url.rstrip("/"))
    if match is None:
        return None
    segments = tuple(s for s in (match["path"] or "").split("/") if s)
    return AbfssUrl(match["container"], match["host"], segments)


@dataclass(frozen=True)
class AbfssLocation:
    """A folder in an ADLS Gen2 container, as the Blob endpoint client addresses it."""

    container: str
    account: str
    suffix: str  # core.windows.net, core.chinacloudapi.cn...
    prefix: str  # the root folder inside the container ("" for the container itself)

    @property
    def blob_endpoint(self) -> str:
        return f"https://{self.account}.blob.{self.suffix}"

    def url(self, path: str = "") -> str:
        key = "/".join(p for p in (self.prefix, path) if p)
        return f"abfss://{self.container}@{self.account}.dfs.{self.suffix}/{key}".rstrip("/")


def parse_abfss(url: str) -> AbfssLocation:
    """The location ``url`` names; UsageError unless the host is ``<account>.dfs.<suffix>`` and
    the path has no ``..`` (``.`` segments and repeated slashes are dropped)."""
    parts = split_abfss(url)
    host = _DFS_HOST.fullmatch(parts.host) if parts is not None else None
    if parts is None or host is None:
        raise UsageError(f"{url}: expected abfss://<container>@<account>.dfs.core.windows.net/...")
    if ".." in parts.segments:
        raise UsageError(f"{url}: the path must not contain '.' or '..'")
    prefix = "/".join(s for s in parts.segments if s != ".")
    return AbfssLocation(parts.container, host["account"], host["suffix"], prefix)
