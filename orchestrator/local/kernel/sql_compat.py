"""The Databricks SQL compatibility layer: what a statement becomes on the local engine.

Databricks notebooks use statements the local engine (Sail) lacks or reads differently. Every
statement a notebook sends (``%sql`` cells, SQL notebooks, ``spark.sql``) is planned here
first, and the plan is one of four things (:class:`Plan`):

* **works**: the engine runs it as written;
* **translated**: the engine runs an equivalent text (bare ``USE x`` -> ``USE SCHEMA x``,
  bare ``DESCRIBE t`` -> ``DESCRIBE TABLE t``, ``USE c.s`` -> ``USE CATALOG c`` +
  ``USE SCHEMA s``, ``spark_catalog.`` -> ``hive_metastore.``, the legacy catalog name Unity
  Catalog resolves to the Hive metastore);
* **emulated**: the kernel does it (:mod:`.sql_emulation`): ``DESCRIBE DETAIL``/``HISTORY``
  and ``VACUUM`` from the Delta log, ``CACHE``/``UNCACHE``/``REFRESH`` with Databricks'
  results, ``SET``/``RESET`` through the session's conf, ``CREATE WIDGET``...;
* **refused**: a clear error naming the statement, the engine and its version, why, and what
  to use instead (:class:`~.common.UnsupportedByLocalEngine`).

Planning reads tokens (:mod:`.sql_text`), not a grammar: a statement no rule recognises
works, and the engine judges it. :data:`RULES` lists every rule for the compatibility table.

It runs inside user kernels: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .sql_text import Token, one_line, rename_catalog, tokens

__all__ = ["RULES", "Plan", "TableRef", "plan"]

Kind = Literal["works", "translated", "emulated", "refused"]

#: the legacy name of the session catalog; on a Unity Catalog workspace it is the Hive metastore
LEGACY_CATALOG = "spark_catalog"
HIVE_CATALOG = "hive_metastore"


@dataclass(frozen=True)
class TableRef:
    """What a statement names: a table (its SQL text, ``main.s.t``) or a path (``'/x'`` or
    ``delta.`/x```)."""

    name: str | None = None
    path: str | None = None

    def sql(self) -> str:
        """The reference as SQL text (a path as ``delta.`path```)."""
        if self.name is not None:
            return self.name
        return "delta.`" + str(self.path).replace("`", "``") + "`"


@dataclass(frozen=True)
class Plan:
    """What one statement becomes. ``statements`` are run in order for works/translated (the
    last one's result is the statement's); ``emulation`` and ``args`` name the kernel's way for
    emulated ones; ``what`` is the statement's kind (``DESCRIBE HISTORY``); ``reason`` says how
    (translated, emulated) or why not (refused), ``instead`` what to use."""

    kind: Kind
    what: str
    statements: tuple[str, ...] = ()
    emulation: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    instead: str = ""


@dataclass(frozen=True)
class Rule:
    """One row of the compatibility layer: a statement form, what happens to it and why."""

    form: str
    kind: Kind
    note: str


RULES: tuple[Rule, ...] = (
    Rule("USE x", "translated", "USE SCHEMA x"),
    Rule("USE c.s / USE SCHEMA c.s", "translated", "USE CATALOG c; USE SCHEMA s"),
    Rule("DESCRIBE t / DESC t", "translated", "DESCRIBE TABLE t"),
    Rule("DESCRIBE FORMATTED t", "translated", "DESCRIBE TABLE EXTENDED t"),
    Rule("spark_catalog.s.t", "translated", "hive_metastore.s.t, as on Unity Catalog"),
    Rule("DESCRIBE DETAIL t", "emulated", "read from the Delta log"),
    Rule("DESCRIBE HISTORY t", "emulated", "read from the Delta log"),
    Rule("DESCRIBE TABLE t col", "emulated", "from the table's schema"),
    Rule("DESCRIBE QUERY q", "emulated", "from the query's schema"),
    Rule("CACHE [LAZY] TABLE t [AS q]", "emulated", "no-op (AS q: a temporary view)"),
    Rule("UNCACHE TABLE t, CLEAR CACHE", "emulated", "no-op"),
    Rule("REFRESH TABLE t", "emulated", "no-op (tables are read fresh)"),
    Rule("OPTIMIZE t", "emulated", "Databricks' result; files are not compacted"),
    Rule("VACUUM t", "emulated", "unreferenced files older than the retention deleted"),
    Rule("RESTORE TABLE t TO VERSION AS OF n", "emulated", "the version read and written back"),
    Rule("SET / SET k / SET k=v / RESET", "emulated", "the session's conf"),
    Rule("TRUNCATE TABLE t", "emulated", "DELETE FROM t"),
    Rule("ANALYZE TABLE t COMPUTE STATISTICS", "emulated", "no-op"),
    Rule("SHOW TBLPROPERTIES t", "emulated", "read from the Delta log"),
    Rule("SHOW PARTITIONS t", "emulated", "read from the Delta log"),
    Rule("CREATE TABLE t LIKE s", "emulated", "s's schema, no rows"),
    Rule("CREATE OR REPLACE TABLE t AS q", "emulated", "overwrite with the new schema"),
    Rule("CREATE WIDGET / REMOVE WIDGET", "emulated", "dbutils.widgets"),
    Rule("ALTER TABLE (but SET/UNSET TBLPROPERTIES)", "refused", "the engine lacks it"),
    Rule("COMMENT ON", "refused", "the engine lacks it"),
    Rule("SHOW CREATE TABLE", "refused", "the engine lacks it"),
    Rule("CONVERT TO DELTA, COPY INTO", "refused", "the engine lacks it"),
    Rule("CREATE FUNCTION (SQL UDF)", "refused", "the engine lacks it"),
    Rule("DECLARE VARIABLE, SET VAR, EXECUTE IMMEDIATE", "refused", "the engine lacks it"),
    Rule("QUALIFY", "refused", "the engine cannot parse it"),
    Rule("col:path (JSON path)", "refused", "the engine cannot parse it"),
    Rule("GRANT, REVOKE, DENY, SHOW GRANTS", "refused", "one user, no permissions"),
    Rule("CREATE/DROP CATALOG", "refused", "the catalogs are main and hive_metastore"),
)

_DESCRIBE_OBJECTS = {"FUNCTION", "CATALOG", "DATABASE", "SCHEMA", "NAMESPACE"}
_QUERY_STARTS = {"SELECT", "WITH", "VALUES", "FROM"}
_SCHEMA_WORDS = {"SCHEMA", "DATABASE", "NAMESPACE"}
_ALTER_INSTEAD = {
    "ADD": "append with df.write.option('mergeSchema', 'true') to add columns",
    "RENAME": "CREATE TABLE new AS SELECT * FROM old, then DROP TABLE old",
    "DROP": "CREATE OR REPLACE TABLE t AS SELECT the columns to keep FROM t",
    "ALTER": "CREATE OR REPLACE TABLE t AS SELECT with the column cast as wanted",
    "CHANGE": "CREATE OR REPLACE TABLE t AS SELECT with the column cast as wanted",
    "REPLACE": "CREATE OR REPLACE TABLE t AS SELECT the new columns",
}


def plan(statement: str) -> Plan:
    """The plan of one statement (no trailing ``;``)."""
    text = statement
    renamed = rename_catalog(text, LEGACY_CATALOG, HIVE_CATALOG)
    toks = tokens(renamed)
    if not toks:
        return Plan("works", "", (renamed,))
    found = _refusal(toks) or _plan_tokens(renamed, toks)
    if renamed != text and found.kind == "works":
        note = f"{LEGACY_CATALOG} -> {HIVE_CATALOG}, as on Unity Catalog"
        return Plan("translated", found.what, found.statements, reason=note)
    return found


def _words(toks: list[Token], count: int) -> list[str]:
    return [t.upper for t in toks[:count]] + [""] * max(0, count - len(toks))


def _plan_tokens(text: str, toks: list[Token]) -> Plan:
    first, second = _words(toks, 2)
    handler = _HANDLERS.get(first)
    if handler is not None:
        result = handler(text, toks)
        if result is not None:
            return result
    what = f"{first} {second}" if first in ("CREATE", "SHOW", "DROP", "ALTER") else first
    return Plan("works", what.strip(), (text,))


# --------------------------------------------------------------------------- refusals


def _refuse(what: str, reason: str, instead: str) -> Plan:
    return Plan("refused", what, reason=reason, instead=instead)


def _refusal(toks: list[Token]) -> Plan | None:
    """Statements and clauses refused wherever they appear."""
    first, second, third = _words(toks, 3)
    if first in ("GRANT", "REVOKE", "DENY") or (first, second) == ("SHOW", "GRANTS"):
        return _refuse(
            first if first != "SHOW" else "SHOW GRANTS",
            "the local workspace has one user and enforces no permissions",
            "leave grants to the deployment; nothing needs them locally",
        )
    if first == "COMMENT" and second == "ON":
        return _refuse("COMMENT ON", "the engine has no table comments", "COMMENT in CREATE")
    if first == "CONVERT":
        return _refuse(
            "CONVERT TO DELTA",
            "the engine cannot convert tables in place",
            "spark.read.parquet(path).write.format('delta').save(new_path)",
        )
    if (first, second) == ("COPY", "INTO"):
        return _refuse(
            "COPY INTO",
            "the engine has no COPY INTO",
            "spark.read.format(...).load(path).write.mode('append').saveAsTable(t)",
        )
    if first == "DECLARE" or (first, second) in (("SET", "VAR"), ("SET", "VARIABLE")):
        return _refuse(
            "SQL session variables",
            "the engine has no session variables",
            "a Python variable passed as a named parameter marker (spark.sql(q, args={...}))",
        )
    if (first, second) == ("EXECUTE", "IMMEDIATE"):
        return _refuse("EXECUTE IMMEDIATE", "the engine has no EXECUTE IMMEDIATE", "spark.sql")
    if first in ("CREATE", "DROP") and "CATALOG" in (second, third):
        return _refuse(
            f"{first} CATALOG",
            "the local workspace has the catalogs main and hive_metastore only",
            "a schema: CREATE SCHEMA main.<name>",
        )
    if first == "CREATE" and _creates_function(toks):
        return _refuse(
            "CREATE FUNCTION",
            "the engine has no SQL or Hive user-defined functions",
            "a Python UDF (pyspark.sql.functions.udf) registered with spark.udf.register",
        )
    if first in ("MSCK", "FSCK"):
        return _refuse(f"{first} REPAIR TABLE", "the engine lacks it", "nothing: Delta needs none")
    for index, token in enumerate(toks):
        if token.upper == "QUALIFY" and _is_clause(toks, index):
            return _refuse(
                "QUALIFY",
                "the engine cannot parse the QUALIFY clause",
                "a subquery that computes the window column, filtered with WHERE",
            )
        if _json_path(toks, index):
            return _refuse(
                "the JSON path operator (col:path)",
                "the engine cannot parse Databricks' JSON path syntax",
                "get_json_object(col, '$.path') or from_json",
            )
    return None


def _creates_function(toks: list[Token]) -> bool:
    """``CREATE [OR REPLACE] [TEMP|TEMPORARY] FUNCTION``, not a table with such a column."""
    for token in toks[1:5]:
        if token.upper == "FUNCTION":
            return True
        if token.upper not in ("OR", "REPLACE", "TEMP", "TEMPORARY"):
            return False
    return False


def _is_clause(toks: list[Token], index: int) -> bool:
    """A keyword used as a clause, not as a column name (``SELECT qualify, x``)."""
    if index == 0 or index + 1 >= len(toks):
        return False
    before, after = toks[index - 1], toks[index + 1]
    return (
        before.upper not in ("SELECT", "AS")
        and before.text not in (",", ".")
        and (after.text not in (",", ")", ".") and after.upper not in ("FROM", "AS"))
    )


def _json_path(toks: list[Token], index: int) -> bool:
    token = toks[index]
    if token.kind != "op" or token.text != ":" or not 0 < index < len(toks) - 1:
        return False
    before, after = toks[index - 1], toks[index + 1]
    joined = before.end == token.start and after.start == token.end
    value = before.kind in ("word", "quoted") or before.text in (")", "]")
    return joined and value and not _in_struct_type(toks, index)


def _in_struct_type(toks: list[Token], index: int) -> bool:
    """Whether ``toks[index]`` is inside ``STRUCT<...>`` (``STRUCT<a:INT>``'s colon)."""
    depth = 0
    for back in range(index - 1, -1, -1):
        text = toks[back].text
        if text == ">":
            depth += 1
        elif text == "<":
            if depth == 0:
                return back > 0 and toks[back - 1].upper == "STRUCT"
            depth -= 1
    return False


# --------------------------------------------------------------------------- names


def _name(text: str, toks: list[Token], index: int) -> tuple[TableRef | None, int]:
    """The table or path named at ``toks[index]``, and the index after it."""
    if index >= len(toks):
        return None, index
    token = toks[index]
    if token.kind == "string":
        return TableRef(path=_unquote(token.text)), index + 1
    if token.kind not in ("word", "quoted"):
        return None, index
    end = index
    while (
        end + 2 < len(toks)
        and toks[end + 1].text == "."
        and toks[end + 2].kind in ("word", "quoted")
        and toks[end + 1].start == toks[end].end
    ):
        end += 2
    parts = [t.name for t in toks[index : end + 1 : 2]]
    if len(parts) == 2 and parts[0].lower() == "delta" and toks[end].kind == "quoted":
        return TableRef(path=parts[1]), end + 1
    return TableRef(name=text[token.start : toks[end].end]), end + 1


def _parts(ref: TableRef | None) -> list[str]:
    if ref is None or ref.name is None:
        return []
    return [t.name for t in tokens(ref.name) if t.kind in ("word", "quoted")]


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return body.replace("\\" + literal[0], literal[0]).replace("\\\\", "\\")


def _rest(text: str, toks: list[Token], index: int) -> str:
    return text[toks[index].start :].strip() if index < len(toks) else ""


# --------------------------------------------------------------------------- statements


def _use(text: str, toks: list[Token]) -> Plan | None:
    second = _words(toks, 2)[1]
    if second == "CATALOG":
        if len(toks) == 3 and toks[2].name.lower() == LEGACY_CATALOG:
            reason = f"{LEGACY_CATALOG} -> {HIVE_CATALOG}, as on Unity Catalog"
            return Plan("translated", "USE", (f"USE CATALOG {HIVE_CATALOG}",), reason=reason)
        return None
    start = 2 if second in _SCHEMA_WORDS else 1
    ref, end = _name(text, toks, start)
    parts = _parts(ref)
    if ref is None or ref.name is None or end != len(toks) or len(parts) > 2:
        return None
    if len(parts) == 2:
        catalog, schema = (t for t in tokens(ref.name) if t.kind in ("word", "quoted"))
        return Plan(
            "translated",
            "USE",
            (f"USE CATALOG {catalog.text}", f"USE SCHEMA {schema.text}"),
            reason=(
                "USE c.s -> USE CATALOG c; USE SCHEMA s (the engine reads c.s as a schema of "
                "the current catalog)"
            ),
        )
    if start == 1:
        return Plan(
            "translated", "USE", (f"USE SCHEMA {ref.name}",), reason="USE x -> USE SCHEMA x"
        )
    return None


def _describe(text: str, toks: list[Token]) -> Plan | None:
    second = _words(toks, 2)[1]
    if second == "DETAIL":
        ref, _ = _name(text, toks, 2)
        return Plan("emulated", "DESCRIBE DETAIL", emulation="detail", args={"target": ref})
    if second == "HISTORY":
        ref, end = _name(text, toks, 2)
        limit = None
        if end + 1 < len(toks) and toks[end].upper == "LIMIT" and toks[end + 1].text.isdigit():
            limit = int(toks[end + 1].text)
        args: dict[str, Any] = {"target": ref, "limit": limit}
        return Plan("emulated", "DESCRIBE HISTORY", emulation="history", args=args)
    if second in _DESCRIBE_OBJECTS:
        return None
    index = 1
    if second == "QUERY" or second in _QUERY_STARTS:
        query = _rest(text, toks, 2 if second == "QUERY" else 1)
        return Plan("emulated", "DESCRIBE QUERY", emulation="describe_query", args={"query": query})
    has_table = second == "TABLE"
    index += 1 if has_table else 0
    mode = toks[index].upper if index < len(toks) else ""
    extended = mode in ("EXTENDED", "FORMATTED")
    index += 1 if extended else 0
    ref, end = _name(text, toks, index)
    if ref is None or ref.name is None:
        return None
    if end < len(toks):
        column, column_end = _name(text, toks, end)
        if column is not None and column.name is not None and column_end == len(toks):
            args = {"target": ref, "column": column.name}
            return Plan("emulated", "DESCRIBE column", emulation="describe_column", args=args)
        return None
    keyword = toks[0].upper
    if has_table and keyword == "DESCRIBE" and mode != "FORMATTED":
        return None
    translated = "DESCRIBE TABLE " + ("EXTENDED " if extended else "") + ref.name
    reason = "DESCRIBE [EXTENDED|FORMATTED] t -> DESCRIBE TABLE [EXTENDED] t"
    return Plan("translated", "DESCRIBE", (translated,), reason=reason)


def _cache(text: str, toks: list[Token]) -> Plan | None:
    index = 1
    lazy = index < len(toks) and toks[index].upper == "LAZY"
    index += 1 if lazy else 0
    if index >= len(toks) or toks[index].upper != "TABLE":
        return None
    ref, end = _name(text, toks, index + 1)
    if end < len(toks) and toks[end].upper == "OPTIONS":
        depth, end = 0, end + 1
        while end < len(toks):
            depth += {"(": 1, ")": -1}.get(toks[end].text, 0)
            end += 1
            if depth == 0:
                break
    if end < len(toks) and toks[end].upper == "AS":
        end += 1
    query = _rest(text, toks, end) or None
    args = {"target": ref, "query": query, "lazy": lazy}
    return Plan("emulated", "CACHE TABLE", emulation="cache", args=args)


def _uncache(text: str, toks: list[Token]) -> Plan | None:
    if _words(toks, 2)[1] != "TABLE":
        return None
    index = 2
    if_exists = _words(toks, 4)[2:4] == ["IF", "EXISTS"]
    ref, _ = _name(text, toks, index + (2 if if_exists else 0))
    args = {"target": ref, "if_exists": if_exists}
    return Plan("emulated", "UNCACHE TABLE", emulation="uncache", args=args)


def _clear(text: str, toks: list[Token]) -> Plan | None:
    if _words(toks, 2)[1] != "CACHE":
        return None
    return Plan("emulated", "CLEAR CACHE", emulation="noop", args={"clear": True})


def _refresh(text: str, toks: list[Token]) -> Plan | None:
    second = _words(toks, 2)[1]
    if second in ("FUNCTION", "FOREIGN"):
        return Plan("emulated", "REFRESH", emulation="noop")
    ref, _ = _name(text, toks, 2 if second == "TABLE" else 1)
    args = {"target": ref if ref is not None and ref.name is not None else None}
    return Plan("emulated", "REFRESH TABLE", emulation="refresh", args=args)


def _optimize(text: str, toks: list[Token]) -> Plan | None:
    ref, _ = _name(text, toks, 1)
    return Plan("emulated", "OPTIMIZE", emulation="optimize", args={"target": ref})


def _vacuum(text: str, toks: list[Token]) -> Plan | None:
    ref, end = _name(text, toks, 1)
    hours: float | None = None
    words = [t.upper or t.text for t in toks[end:]]
    if "RETAIN" in words:
        at = words.index("RETAIN")
        try:
            hours = float(words[at + 1])
        except (IndexError, ValueError):
            return None
    dry_run = "DRY" in words
    args = {"target": ref, "hours": hours, "dry_run": dry_run}
    return Plan("emulated", "VACUUM", emulation="vacuum", args=args)


def _restore(text: str, toks: list[Token]) -> Plan | None:
    index = 2 if _words(toks, 2)[1] == "TABLE" else 1
    ref, end = _name(text, toks, index)
    words = [t.upper for t in toks[end:]]
    if end < len(toks) and words[0] == "TO":
        end, words = end + 1, words[1:]
    if len(words) < 4 or words[1:3] != ["AS", "OF"] or words[0] not in ("VERSION", "TIMESTAMP"):
        return None
    value = toks[end + 3]
    literal = _unquote(value.text) if value.kind == "string" else value.text
    args = {"target": ref, "by": words[0].lower(), "value": literal}
    return Plan("emulated", "RESTORE", emulation="restore", args=args)


def _set(text: str, toks: list[Token]) -> Plan | None:
    body = _rest(text, toks, 1)
    if not body or body == "-v":
        return Plan("emulated", "SET", emulation="set", args={"key": None, "value": None})
    words = _words(toks, 3)
    if words[1:3] == ["TIME", "ZONE"]:
        value_tokens = toks[3:]
        if len(value_tokens) == 1 and value_tokens[0].kind == "string":
            args: dict[str, Any] = {
                "key": "spark.sql.session.timeZone",
                "value": _unquote(value_tokens[0].text),
            }
            return Plan("emulated", "SET TIME ZONE", emulation="set", args=args)
        return None
    key, eq, value = body.partition("=")
    args = {"key": key.strip().strip("`"), "value": value.strip() if eq else None}
    return Plan("emulated", "SET", emulation="set", args=args)


def _reset(text: str, toks: list[Token]) -> Plan | None:
    key = _rest(text, toks, 1).strip("`") or None
    return Plan("emulated", "RESET", emulation="reset", args={"key": key})


def _truncate(text: str, toks: list[Token]) -> Plan | None:
    if _words(toks, 2)[1] != "TABLE":
        return None
    ref, end = _name(text, toks, 2)
    if ref is None or end != len(toks):
        return None
    return Plan("emulated", "TRUNCATE TABLE", emulation="truncate", args={"target": ref})


def _analyze(text: str, toks: list[Token]) -> Plan | None:
    return Plan("emulated", "ANALYZE TABLE", emulation="noop")


def _show(text: str, toks: list[Token]) -> Plan | None:
    second, third = _words(toks, 3)[1:]
    if second == "TBLPROPERTIES":
        ref, end = _name(text, toks, 2)
        key = None
        if end + 2 < len(toks) and toks[end].text == "(":
            key = _unquote(toks[end + 1].text) if toks[end + 1].kind == "string" else None
            key = key or text[toks[end + 1].start : toks[-1].start].strip()
        args = {"target": ref, "key": key}
        return Plan("emulated", "SHOW TBLPROPERTIES", emulation="tblproperties", args=args)
    if second == "PARTITIONS":
        ref, _ = _name(text, toks, 2)
        return Plan("emulated", "SHOW PARTITIONS", emulation="partitions", args={"target": ref})
    if (second, third) == ("CREATE", "TABLE"):
        return _refuse(
            "SHOW CREATE TABLE",
            "the engine cannot render a table's DDL",
            "DESCRIBE TABLE EXTENDED t (columns, provider, location)",
        )
    return None


def _alter(text: str, toks: list[Token]) -> Plan | None:
    if _words(toks, 2)[1] != "TABLE":
        return None
    _, end = _name(text, toks, 2)
    action = toks[end].upper if end < len(toks) else ""
    if action in ("SET", "UNSET") and "TBLPROPERTIES" in _words(toks[end:], 3):
        return None
    if action in ("SET", "UNSET", "CLUSTER", "OWNER"):
        clause = " ".join(t.upper for t in toks[end : end + 2])
        return _refuse(f"ALTER TABLE ... {clause}", "the engine lacks it", "DESCRIBE DETAIL")
    instead = _ALTER_INSTEAD.get(action, "CREATE OR REPLACE TABLE t AS SELECT ...")
    return _refuse(f"ALTER TABLE ... {action}", "the engine cannot alter a table", instead)


def _create(text: str, toks: list[Token]) -> Plan | None:
    words = _words(toks, 6)
    if words[1] == "WIDGET":
        return _create_widget(text, toks)
    replace = words[1:3] == ["OR", "REPLACE"]
    index = 3 if replace else 1
    if index >= len(toks) or toks[index].upper != "TABLE":
        return None
    index += 1
    if_not_exists = _words(toks[index:], 3) == ["IF", "NOT", "EXISTS"]
    index += 3 if if_not_exists else 0
    ref, end = _name(text, toks, index)
    if ref is None:
        return None
    if end + 1 < len(toks) and toks[end].upper == "LIKE":
        source, source_end = _name(text, toks, end + 1)
        if source is not None and source_end == len(toks):
            args = {"target": ref, "source": source, "if_not_exists": if_not_exists}
            return Plan("emulated", "CREATE TABLE LIKE", emulation="create_like", args=args)
        return None
    if replace:
        return _replace_table(text, toks, ref, end)
    return None


def _replace_table(text: str, toks: list[Token], ref: TableRef, end: int) -> Plan | None:
    """``CREATE OR REPLACE TABLE t [USING delta] [PARTITIONED BY (a, b)] AS query``: the
    engine keeps the old schema, so the kernel overwrites with the new one."""
    partitions: list[str] = []
    index = end
    while index < len(toks) and toks[index].upper != "AS":
        word = toks[index].upper
        if word == "USING" and index + 1 < len(toks) and toks[index + 1].upper == "DELTA":
            index += 2
        elif (
            word == "PARTITIONED"
            and _words(toks[index:], 2)[1] == "BY"
            and index + 2 < len(toks)
            and toks[index + 2].text == "("
        ):
            index += 3
            while index < len(toks) and toks[index].text != ")":
                if toks[index].kind in ("word", "quoted"):
                    partitions.append(toks[index].name)
                index += 1
            index += 1
        else:
            return None
    query = _rest(text, toks, index + 1)
    if index >= len(toks) or not query:
        return None
    args = {"target": ref, "query": query, "partitions": partitions}
    return Plan("emulated", "CREATE OR REPLACE TABLE AS", emulation="replace_table", args=args)


def _create_widget(text: str, toks: list[Token]) -> Plan | None:
    words = _words(toks, 4)
    kind = words[2].lower()
    if kind not in ("text", "dropdown", "combobox", "multiselect") or len(toks) < 4:
        return None
    name = toks[3].name
    rest = [t.upper for t in toks[4:]]
    default = ""
    if "DEFAULT" in rest:
        value = toks[4 + rest.index("DEFAULT") + 1]
        default = _unquote(value.text) if value.kind == "string" else value.text
    choices = None
    if "CHOICES" in rest:
        choices = _rest(text, toks, 4 + rest.index("CHOICES") + 1)
    args = {"kind": kind, "name": name, "default": default, "choices": choices}
    return Plan("emulated", "CREATE WIDGET", emulation="create_widget", args=args)


def _remove(text: str, toks: list[Token]) -> Plan | None:
    if _words(toks, 2)[1] != "WIDGET" or len(toks) < 3:
        return None
    args = {"name": toks[2].name}
    return Plan("emulated", "REMOVE WIDGET", emulation="remove_widget", args=args)


_HANDLERS = {
    "USE": _use,
    "DESCRIBE": _describe,
    "DESC": _describe,
    "CACHE": _cache,
    "UNCACHE": _uncache,
    "CLEAR": _clear,
    "REFRESH": _refresh,
    "OPTIMIZE": _optimize,
    "VACUUM": _vacuum,
    "RESTORE": _restore,
    "SET": _set,
    "RESET": _reset,
    "TRUNCATE": _truncate,
    "ANALYZE": _analyze,
    "SHOW": _show,
    "ALTER": _alter,
    "CREATE": _create,
    "REMOVE": _remove,
}


def describe(statement: str, limit: int = 120) -> str:
    """A statement as error messages quote it: one line, at most ``limit`` characters."""
    return one_line(statement, limit)
