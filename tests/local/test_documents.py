"""The state database's documents: keys compare as they are, case and all."""

from __future__ import annotations

from pathlib import Path

from orchestrator.local.state.documents import Documents
from orchestrator.local.state.store import Store


def test_a_prefix_takes_only_keys_that_start_with_it_exactly(tmp_path: Path) -> None:
    docs = Documents(Store(tmp_path))
    for key in ("a/1", "A/2", "a_/3", "ab/4", "é/5"):
        docs.put("k", key, {"key": key})
    assert [k for k, _ in docs.items("k", "a/")] == ["a/1"]
    assert [k for k, _ in docs.items("k", "a_")] == ["a_/3"]  # `_` is no wildcard
    assert [k for k, _ in docs.items("k", "é/")] == ["é/5"]
    assert len(docs.items("k")) == 5
    docs.delete_prefix("k", "A/")
    assert [k for k, _ in docs.items("k")] == ["a/1", "a_/3", "ab/4", "é/5"]
