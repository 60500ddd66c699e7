"""What a run page shows of a ``git_source`` run: where its notebooks came from (the Git URL
and provider), the branch, tag or commit it asked for, and the commit it used
(``git_snapshot.used_commit``), as the Jobs UI's task run details show the Git details."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.local.state.git_store import without_credentials
from orchestrator.local.ui.shell import esc

__all__ = ["git_source_facts"]

_REFERENCES = (("git_branch", "branch"), ("git_tag", "tag"), ("git_commit", "commit"))


def git_source_facts(doc: Mapping[str, Any]) -> str:
    """``<dt>``/``<dd>`` pairs for the run's facts list; empty for a run without
    ``git_source``."""
    source = doc.get("git_source")
    if not isinstance(source, Mapping):
        return ""
    provider = source.get("git_provider")
    where = esc(without_credentials(str(source.get("git_url", ""))))
    if provider:
        where += f' <span class="muted">({esc(provider)})</span>'
    reference = next(
        (f"{label} {source[key]}" for key, label in _REFERENCES if source.get(key)), ""
    )
    used = (source.get("git_snapshot") or {}).get("used_commit") or ""
    return (
        f'<dt>Source</dt><dd id="git-source">Git: <span class="mono">{where}</span></dd>'
        f'<dt>Git reference</dt><dd id="git-reference" class="mono">{esc(reference)}</dd>'
        f'<dt>Used commit</dt><dd id="git-used-commit" class="mono">{esc(used)}</dd>'
    )
