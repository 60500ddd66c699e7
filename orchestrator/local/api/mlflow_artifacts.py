"""MLflow artifacts of the local workspace: where they are kept and the signed URLs to them.

On Databricks, the MLflow client never sends artifact bytes to the workspace's API: it asks
for credentials (``artifacts/credentials-for-write``, ``logged-models/<id>/artifacts/
credentials-for-upload``, the registry's ``model-versions/get-signed-download-uri``) and gets
presigned URLs to the cloud storage behind the workspace, which it then PUTs to and GETs from
without the workspace's token. Here the storage is ``<state_dir>/mlflow/artifacts/`` and the
presigned URLs point back to this workspace (``/local-mlflow-artifacts/...``), signed with a
key that lives as long as the server and valid for 15 minutes, as an S3 presigned URL is
(``AWS_PRESIGNED_URL``: the one credential type the client handles with a plain ``PUT``).

Artifacts are kept per owner: ``runs/<run id>/<path>``, ``logged_models/<model id>/<path>``
and ``uc_models/<catalog>.<schema>.<model>/<version>/<path>`` (``api/mlflow_uc_registry.py``),
``<path>`` relative to the owner's artifact root (what the client sends). The tree is walked
by descriptor and never through a link (``state/confined.py``): notebooks run on this machine
and could plant one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.state.api_error import ApiError, bad_request, not_found
from orchestrator.local.state.confined import SymlinkRefused, Tree

__all__ = ["ArtifactOwner", "MlflowArtifacts", "owner_of_source"]

Kind = Literal["runs", "logged_models", "uc_models"]
#: how long a signed URL is valid (S3's presigned URLs as Databricks hands them out: minutes)
URL_SECONDS = 15 * 60
_ROUTE = "/local-mlflow-artifacts"
#: a run's or logged model's id, or a Unity Catalog model's three-level name
_ID = re.compile(r"(?!\.\.?$)[A-Za-z0-9_.-]{1,255}")
_TRACKING = r"dbfs:/databricks/mlflow-tracking/[^/]+"
_SOURCES: tuple[tuple[re.Pattern[str], Kind], ...] = (
    (re.compile(r"models:/(?P<id>m-[0-9a-f]+)(?P<path>/.*)?"), "logged_models"),
    (
        re.compile(_TRACKING + r"/(?:logged_)?models/(?P<id>m-[0-9a-f]+)/artifacts(?P<path>/.*)?"),
        "logged_models",
    ),
    (re.compile(_TRACKING + r"/(?P<id>[0-9a-f]{32})/artifacts(?P<path>/.*)?"), "runs"),
    (re.compile(r"runs:/(?P<id>[0-9a-f]{32})(?P<path>/.*)?"), "runs"),
)


@dataclass(frozen=True)
class ArtifactOwner:
    """A run's or a logged model's artifacts, and a folder of them (``prefix``)."""

    kind: Kind
    owner_id: str
    prefix: str = ""


def owner_of_source(source: str, model_id: str = "") -> ArtifactOwner:
    """Where a registered model version's files are: its logged model, or the run folder its
    ``source`` names (every form the MLflow 3 client registers from)."""
    if model_id and _ID.fullmatch(model_id):
        return ArtifactOwner("logged_models", model_id)
    for pattern, kind in _SOURCES:
        match = pattern.fullmatch(source.rstrip("/"))
        if match:
            return ArtifactOwner(kind, match["id"], (match["path"] or "").strip("/"))
    raise ApiError(
        400,
        "INVALID_PARAMETER_VALUE",
        f"The model version's source {source[:200]!r} is not an artifact location of this "
        "workspace's MLflow tracking",
    )


def _parts(path: str) -> tuple[str, ...]:
    """The names of a relative artifact path; ``..``, ``.`` and NUL refused."""
    parts = tuple(p for p in path.split("/") if p)
    if any(p in (".", "..") or "\x00" in p or len(p.encode()) > 255 for p in parts):
        raise bad_request(f"Invalid artifact path: {path[:200]!r}")
    return parts


class MlflowArtifacts:
    """The artifact store and its signed URLs, for one workspace."""

    def __init__(self, state_dir: Path, base_url: str) -> None:
        self.root = state_dir / "mlflow" / "artifacts"
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = state_dir / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self.tree = Tree(self.root, trash=self._tmp, label="mlflow-artifacts:")
        self.base_url = base_url
        self._key = secrets.token_bytes(32)

    # --- signed URLs -----------------------------------------------------------------------
    def _signature(self, method: str, target: str, expires: int) -> str:
        message = f"{method}\n{target}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def signed_url(self, method: str, owner: ArtifactOwner, path: str) -> str:
        """A URL that lets anyone holding it ``method`` (``PUT`` or ``GET``) one file."""
        if not _ID.fullmatch(owner.owner_id):
            raise bad_request(f"Invalid id: {owner.owner_id[:100]!r}")
        parts = _parts("/".join(p for p in (owner.prefix, path) if p))
        if not parts:
            raise bad_request("An artifact path is required")
        target = "/".join((owner.kind, owner.owner_id, *parts))
        expires = int(time.time()) + URL_SECONDS
        signature = self._signature(method, target, expires)
        return f"{self.base_url}{_ROUTE}/{quote(target)}?expires={expires}&signature={signature}"

    def credential(self, method: str, owner: ArtifactOwner, path: str) -> dict[str, Any]:
        """An ``ArtifactCredentialInfo`` (without ``run_id`` and ``path``)."""
        return {
            "signed_uri": self.signed_url(method, owner, path),
            "type": "AWS_PRESIGNED_URL",
            "headers": [],
        }

    # --- listing -----------------------------------------------------------------------------
    def list_files(self, owner: ArtifactOwner, path: str) -> list[dict[str, Any]]:
        """``FileInfo``s of the folder ``path`` (relative to the owner's root, ``prefix``
        included), paths relative to the root; a file's own entry when ``path`` is a file,
        nothing when there is nothing there."""
        if not _ID.fullmatch(owner.owner_id):
            return []
        base = _parts(owner.prefix)
        parts = _parts(path)
        full = (owner.kind, owner.owner_id, *base, *parts)
        try:
            found = self.tree.lstat(full)
            if found is None:
                return []
            if stat.S_ISREG(found.st_mode):
                return [{"path": "/".join(parts), "is_dir": False, "file_size": found.st_size}]
            files = []
            for name, status in self.tree.entries(full):
                if stat.S_ISLNK(status.st_mode):
                    continue
                entry: dict[str, Any] = {
                    "path": "/".join((*parts, name)),
                    "is_dir": stat.S_ISDIR(status.st_mode),
                }
                if not entry["is_dir"]:
                    entry["file_size"] = status.st_size
                files.append(entry)
            return files
        except (NotADirectoryError, FileNotFoundError, SymlinkRefused):
            return []

    def read(self, owner: ArtifactOwner, path: str) -> bytes:
        """One file's bytes (404 when there is none)."""
        if not _ID.fullmatch(owner.owner_id):
            raise not_found("No such artifact")
        parts = (owner.kind, owner.owner_id, *_parts(owner.prefix), *_parts(path))
        try:
            return self.tree.read_bytes(parts)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, SymlinkRefused):
            raise not_found("No such artifact") from None

    # --- the signed routes ---------------------------------------------------------------------
    def register(self, router: Router) -> None:
        pattern = _ROUTE + r"/(?P<target>[^?]+)"
        router.plain("PUT", pattern, self._put, public=True)
        router.plain("GET", pattern, self._get, public=True)

    def _checked(self, method: str, request: Request, target: str) -> tuple[str, ...]:
        target = unquote(target)
        expires_text = (request.query.get("expires") or [""])[-1]
        signature = (request.query.get("signature") or [""])[-1]
        if not expires_text.isdigit() or len(expires_text) > 12:
            raise ApiError(403, "PERMISSION_DENIED", "The signed URL is malformed")
        expires = int(expires_text)
        expected = self._signature(method, target, expires)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise ApiError(403, "PERMISSION_DENIED", "The signature of the URL does not match")
        if expires < time.time():
            raise ApiError(403, "PERMISSION_DENIED", "The signed URL has expired")
        return _parts(target)

    def _put(self, request: Request, target: str) -> Response:
        parts = self._checked("PUT", request, target)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="mlflow-")
        temporary = Path(name)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(request.body)
            self.tree.place(temporary, parts, make_parents=True)
        except (IsADirectoryError, NotADirectoryError) as exc:
            raise ApiError(409, "RESOURCE_CONFLICT", f"A folder is in the way: {exc}") from None
        finally:
            temporary.unlink(missing_ok=True)
        return Response(200, b"", "application/octet-stream")

    def _get(self, request: Request, target: str) -> Response:
        parts = self._checked("GET", request, target)
        try:
            data = self.tree.read_bytes(parts)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise not_found("No such artifact") from None
        return Response(200, data, "application/octet-stream")
