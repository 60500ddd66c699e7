"""The parts of the in-kernel Spark support that need no engine: Spark's CSV header names, the
Delta log reader behind DESCRIBE DETAIL/HISTORY and VACUUM, the results-table limits of
``display``, and who an engine error blames."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from orchestrator.local.kernel import display
from orchestrator.local.kernel.csv_headers import safe_copies, safe_header
from orchestrator.local.kernel.delta_log import DeltaLog, NotADeltaTable, local_path
from orchestrator.local.kernel.engine_errors import UnsupportedByLocalEngine, engine_name, fault

pytestmark = pytest.mark.fast


# --------------------------------------------------------------------------- CSV headers


def test_duplicate_and_blank_header_names_are_renamed_as_spark_does() -> None:
    # Spark's CSVUtils.makeSafeHeader: duplicates (case-insensitively) get their index,
    # the first occurrence included; blanks (and the nullValue) become _c<index>
    names = ["Elapsed Time", "a", "elapsed time", "", "b", "a", "NA"]
    assert safe_header(names) == [
        "Elapsed Time0",
        "a1",
        "elapsed time2",
        "_c3",
        "b",
        "a5",
        "NA",
    ]
    assert safe_header(names, null_value="NA")[-1] == "_c6"
    assert safe_header(["x", "y"]) == ["x", "y"]


def test_only_csv_files_whose_header_needs_renaming_are_copied(tmp_path: Path) -> None:
    fine = tmp_path / "fine.csv"
    fine.write_text("a,b\n1,2\n")
    assert safe_copies([str(fine)], {"header": "true"}) is None
    assert safe_copies([str(fine)], {}) is None  # no header: nothing to rename

    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "part-1.csv").write_text('t;"x;y";t\n1;2;3\n4;5;6\n')
    (folder / "part-2.csv").write_text("t;x;t\n7;8;9\n")
    (folder / "_SUCCESS").write_text("")
    copies = safe_copies([str(folder)], {"header": "True", "sep": ";"})
    assert copies is not None and len(copies) == 2
    first = Path(copies[0]).read_text()
    assert first == 't0;"x;y";t2\n1;2;3\n4;5;6\n'  # quoting kept, data untouched
    assert Path(copies[1]).read_text() == "t0;x;t2\n7;8;9\n"


# --------------------------------------------------------------------------- Delta log


def _commit(log: Path, version: int, *actions: dict[str, object]) -> None:
    log.mkdir(parents=True, exist_ok=True)
    lines = "\n".join(json.dumps(a) for a in actions)
    (log / f"{version:020d}.json").write_text(lines + "\n")


def _table(tmp_path: Path) -> Path:
    table = tmp_path / "t"
    log = table / "_delta_log"
    meta = {
        "id": "abc",
        "format": {"provider": "parquet"},
        "partitionColumns": ["p"],
        "configuration": {"team": "data"},
        "createdTime": 1_000,
    }
    _commit(
        log,
        0,
        {"commitInfo": {"timestamp": 1_000, "operation": "CREATE TABLE"}},
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {"metaData": meta},
        {"add": {"path": "p=1/a.parquet", "partitionValues": {"p": "1"}, "size": 10}},
    )
    _commit(
        log,
        1,
        {"commitInfo": {"timestamp": 2_000, "operation": "WRITE", "readVersion": 0}},
        {"add": {"path": "p=2/b.parquet", "partitionValues": {"p": "2"}, "size": 20}},
        {"remove": {"path": "p=1/a.parquet", "deletionTimestamp": 2_000}},
    )
    for name in ("p=1/a.parquet", "p=2/b.parquet", "p=2/stray.parquet", "_hidden", ".x.crc"):
        (table / name).parent.mkdir(parents=True, exist_ok=True)
        (table / name).write_bytes(b"x")
    return table


def test_the_delta_log_gives_snapshots_and_history(tmp_path: Path) -> None:
    log = DeltaLog(_table(tmp_path))
    latest = log.snapshot()
    assert latest.version == 1 and list(latest.files) == ["p=2/b.parquet"]
    assert (latest.size_bytes, latest.partition_columns) == (20, ["p"])
    assert latest.properties == {"team": "data"} and latest.timestamp_ms == 2_000
    assert list(log.snapshot(0).files) == ["p=1/a.parquet"]
    assert [(v, i["operation"]) for v, i in log.history()] == [(1, "WRITE"), (0, "CREATE TABLE")]
    assert [v for v, _ in log.history(limit=1)] == [1]
    assert log.created_ms() == 1_000
    with pytest.raises(NotADeltaTable):
        DeltaLog(tmp_path)
    assert local_path("file:///x/y%20z/") == Path("/x/y z")


def test_vacuum_finds_only_unreferenced_files_past_the_retention(tmp_path: Path) -> None:
    table = _table(tmp_path)
    old = time.time() - 10 * 24 * 3600
    os.utime(table / "p=2" / "stray.parquet", (old, old))
    log = DeltaLog(table)
    # removed at 2 s after the epoch and an untracked file 10 days old: both past a 7-day cutoff
    cutoff = int((time.time() - 7 * 24 * 3600) * 1000)
    assert [p.relative_to(table).as_posix() for p in log.unreferenced(cutoff)] == [
        "p=1/a.parquet",
        "p=2/stray.parquet",
    ]
    assert log.unreferenced(0) == []  # nothing is older than the epoch


def test_a_checkpoint_is_read_with_the_commits_after_it(tmp_path: Path) -> None:
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = _table(tmp_path)
    log_dir = table / "_delta_log"
    rows = [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}, "add": None},
        {"protocol": None, "add": {"path": "p=2/b.parquet", "size": 20}},
    ]
    pq.write_table(pyarrow.Table.from_pylist(rows), log_dir / f"{1:020d}.checkpoint.parquet")
    (log_dir / f"{0:020d}.json").unlink()  # the log was cleaned up before the checkpoint
    _commit(log_dir, 2, {"add": {"path": "p=3/c.parquet", "size": 5}})
    snapshot = DeltaLog(table).snapshot()
    assert snapshot.version == 2
    assert sorted(snapshot.files) == ["p=2/b.parquet", "p=3/c.parquet"]


# --------------------------------------------------------------------------- display limits


def test_a_results_table_holds_10000_rows_or_2_mb_whichever_is_lower() -> None:
    pandas = pytest.importorskip("pandas")
    html, plain, table = display._as_table(pandas.DataFrame({"x": range(12_000)}))  # type: ignore[misc]
    assert len(table["data"]) == 10_000 and table["schema"] == [{"name": "x", "type": '"long"'}]
    assert "Truncated results, showing the first 10,000 rows." in html + plain
    assert "<td>9999</td>" in html and "<td>11999</td>" not in html
    wide = [{"s": "x" * 1000} for _ in range(5000)]  # ~5 MB of text
    html, plain, table = display._as_table(wide)  # type: ignore[misc]
    kept = len(table["data"])
    assert 1000 < kept < 2200 and html.count("<tr>") == 1 + kept
    assert f"showing the first {kept:,} rows" in plain
    html, plain, table = display._as_table([{"a": 1}, {"a": 2}])  # type: ignore[misc]
    assert "Truncated" not in html and table["data"] == [[1], [2]]


# --------------------------------------------------------------------------- engine errors


class AnalysisException(Exception):
    pass


class UnsupportedOperationException(Exception):
    pass


class IllegalArgumentException(Exception):
    pass


def test_engine_errors_say_who_is_at_fault() -> None:
    assert fault(AnalysisException("[TABLE_OR_VIEW_NOT_FOUND] t")) == "sql"
    assert fault(UnsupportedOperationException("PlanNode::CacheTable")) == "engine"
    parse = "invalid argument: found {word} at {at} expected 'DATABASE', 'SCHEMA'"
    # a statement the engine does not know at all: the engine's fault
    optimize = IllegalArgumentException(parse.format(word="OPTIMIZE", at="0:8"))
    assert fault(optimize, "OPTIMIZE t") == "engine"
    # a misspelt first word: the SQL's
    assert fault(IllegalArgumentException(parse.format(word="SELEC", at="0:5")), "SELEC 1") == "sql"
    # further in: a syntax error, or syntax the engine lacks; the text alone cannot tell
    later = IllegalArgumentException(parse.format(word="x", at="7:8"))
    assert fault(later, "SELECT x y z") == "syntax"
    assert fault(ValueError("something else")) is None


def test_a_refusal_names_the_statement_the_engine_and_what_to_use() -> None:
    error = UnsupportedByLocalEngine(
        "OPTIMIZE t", reason="no compaction", instead="nothing", where="cell 3 of /n"
    )
    assert str(error) == (
        f"`OPTIMIZE t` (in cell 3 of /n) is not supported by the local Spark engine "
        f"({engine_name()}): no compaction. Use nothing instead."
    )
    assert engine_name().startswith("Sail ")
