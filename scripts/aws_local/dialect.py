"""Athena's SQL (engine v3) as Trino runs it: small rules, each tested, and what Athena refuses.

Athena runs queries and DML as Trino does, but its DDL is Hive-style and a few things Trino
accepts are refused by Athena. ``translate`` applies every rule in ``RULES`` order; a rule either
rewrites the statement, leaves it alone, or raises ``Refused`` (Athena would fail it too: the
stand-in must not be more permissive than production). The README's "Local Athena" table is
the list of rules with an example each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class Refused(Exception):
    """A statement Athena refuses. ``error_name`` is the Athena/Trino error name it reports."""

    def __init__(self, error_name: str, message: str):
        super().__init__(message)
        self.error_name = error_name
        self.message = message


@dataclass
class Statement:
    """A statement on its way through the rules, with what the rules learnt about it."""

    sql: str
    # Set by a rule that turns one Athena statement into several Trino statements (VACUUM).
    extra: list[str] = field(default_factory=list)
    # Glue actions a rule needs instead of SQL (Hive DDL Trino cannot run on moto).
    glue: dict | None = None
    # The Trino catalog the statement runs in: ``iceberg`` (which redirects Hive tables), or
    # ``hive`` for a CTAS that makes a Hive table.
    catalog: str = "iceberg"
    # SHOW statements: Athena's pattern (``*`` any text, ``|`` alternatives) as a regular
    # expression the result rows are filtered with; Trino's LIKE cannot say ``|``.
    row_filter: str | None = None
    # VACUUM: the (database, table) whose ``vacuum_max_snapshot_age_seconds`` sets the age (read
    # from Glue where the statement runs; ``VACUUM_AGE`` marks it in the SQL).
    vacuum: tuple[str, str] | None = None


# Athena's default ``vacuum_max_snapshot_age_seconds``: 5 days.
VACUUM_DEFAULT_AGE = 432000
VACUUM_AGE = "{vacuum_age}"


# Iceberg tables on Athena store these types only; Trino would widen tinyint/smallint silently.
ICEBERG_REFUSED_TYPES = ("tinyint", "smallint", "char")

_HIVE_TYPES = [
    (re.compile(r"\bstring\b", re.I), "varchar"),
    (re.compile(r"\bfloat\b", re.I), "real"),
    (re.compile(r"\bbinary\b", re.I), "varbinary"),
    (re.compile(r"\bint\b", re.I), "integer"),
]


def strip_leading_comments(sql: str) -> str:
    """Athena ignores comments before the statement (dbt sends a ``-- /* {...} */`` line)."""
    s = sql.lstrip()
    while True:
        if s.startswith("--"):
            nl = s.find("\n")
            s = "" if nl < 0 else s[nl + 1 :].lstrip()
        elif s.startswith("/*"):
            end = s.find("*/")
            s = "" if end < 0 else s[end + 2 :].lstrip()
        else:
            return s


def _outside_literals(sql: str):
    """Yields (is_code, text) pieces: string literals, quoted identifiers and comments are not
    code (a comment's apostrophe opens no literal)."""
    i, start, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i) or sql.startswith("/*", i):
            if start < i:
                yield True, sql[start:i]
            if c == "-":
                j = sql.find("\n", i)
                j = n if j < 0 else j
            else:
                j = sql.find("*/", i + 2)
                j = n if j < 0 else j + 2
            yield False, sql[i:j]
            i = start = j
            continue
        if c == "'":
            if start < i:
                yield True, sql[start:i]
            j = i + 1
            while j < n:
                if sql[j] == "'" and j + 1 < n and sql[j + 1] == "'":
                    j += 2
                    continue
                if sql[j] == "'":
                    break
                j += 1
            yield False, sql[i : j + 1]
            i = start = j + 1
            continue
        if c == '"':
            if start < i:
                yield True, sql[start:i]
            j = sql.find('"', i + 1)
            j = n - 1 if j < 0 else j
            yield False, sql[i : j + 1]
            i = start = j + 1
            continue
        i += 1
    if start < n:
        yield True, sql[start:]


def without_comments(sql: str) -> str:
    """The statement with its comments blanked (a space each), literals kept."""
    return "".join(
        " " if not code and (t.startswith("--") or t.startswith("/*")) else t for code, t in _outside_literals(sql)
    )


def _map_code(sql: str, f) -> str:
    return "".join(f(t) if code else t for code, t in _outside_literals(sql))


def backticks(sql: str) -> str:
    """`name` -> "name" (Athena's DDL and Hive quote identifiers with backticks)."""
    out, i, n = [], 0, len(sql)
    for code, t in _outside_literals(sql):
        if not code:
            out.append(t)
            continue
        out.append(re.sub(r"`([^`]*)`", lambda m: '"' + m.group(1).replace('"', '""') + '"', t))
    return "".join(out)


_CATALOG = re.compile(r'(?<![\w."])"?awsdatacatalog"?\s*\.', re.I)


def data_catalog(sql: str) -> str:
    """``awsdatacatalog.db.t`` (or ``"awsdatacatalog".db.t``) -> ``iceberg.db.t``: Athena's
    catalog is Trino's ``iceberg``, which redirects Hive tables to the ``hive`` catalog."""
    pieces = list(_outside_literals(sql))
    out = []
    for i, (code, text) in enumerate(pieces):
        nxt = pieces[i + 1][1] if i + 1 < len(pieces) else ""
        if not code and text.lower() == '"awsdatacatalog"' and nxt.lstrip().startswith("."):
            out.append("iceberg")
        elif code:
            out.append(_CATALOG.sub("iceberg.", text))
        else:
            out.append(text)
    return "".join(out)


def _balanced(sql: str, open_at: int) -> int:
    """The index of the parenthesis closing the one at ``open_at`` (literals skipped)."""
    depth, i, n = 0, open_at, len(sql)
    while i < n:
        c = sql[i]
        if c == "'":
            i += 1
            while i < n and not (sql[i] == "'" and (i + 1 >= n or sql[i + 1] != "'")):
                i += 2 if sql[i] == "'" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise Refused("SYNTAX_ERROR", "unbalanced parentheses")


def _split_top(s: str) -> list[str]:
    """Splits on commas outside parentheses, angle brackets and literals."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(s):
        c = s[i]
        if c == "'":
            j = i + 1
            while j < len(s) and not (s[j] == "'" and (j + 1 >= len(s) or s[j + 1] != "'")):
                j += 2 if s[j] == "'" else 1
            cur.append(s[i : j + 1])
            i = j + 1
            continue
        if c in "(<":
            depth += 1
        elif c in ")>":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def trino_type(hive: str) -> str:
    """A Hive/Athena DDL type in Trino's spelling (``struct<a:int>`` -> ``row(a integer)``)."""
    t = hive.strip()
    low = t.lower()
    if low.startswith("array<") and low.endswith(">"):
        return f"array({trino_type(t[6:-1])})"
    if low.startswith("map<") and low.endswith(">"):
        k, v = _split_top(t[4:-1])
        return f"map({trino_type(k)}, {trino_type(v)})"
    if low.startswith("struct<") and low.endswith(">"):
        fields = []
        for f in _split_top(t[7:-1]):
            name, _, ty = f.partition(":")
            fields.append(f'"{name.strip().strip("`")}" {trino_type(ty)}')
        return f"row({', '.join(fields)})"
    for pattern, repl in _HIVE_TYPES:
        low = pattern.sub(repl, low)
    return low


def _props(text: str) -> dict[str, str]:
    out = {}
    for p in _split_top(text):
        k, _, v = p.partition("=")
        out[k.strip().strip("'\"").lower()] = v.strip().strip("'")
    return out


def _partition_transform(p: str) -> str:
    """Athena's ``bucket(16, id)`` / ``truncate(4, s)`` take the width first; Trino's last."""
    m = re.fullmatch(r"\s*(bucket|truncate)\s*\(\s*(\d+)\s*,\s*([^)]+?)\s*\)\s*", p, re.I)
    if m:
        return f"{m.group(1).lower()}({m.group(3).strip('`')}, {m.group(2)})"
    return p.strip().replace("`", "")


_CREATE_HIVE = re.compile(
    r"^\s*CREATE\s+(EXTERNAL\s+)?TABLE\s+(IF\s+NOT\s+EXISTS\s+)?([\w.\"`]+)\s*\(",
    re.I | re.S,
)


def iceberg_ddl(stmt: Statement) -> Statement:
    """Athena's ``CREATE TABLE t (...) [PARTITIONED BY (...)] LOCATION '..' TBLPROPERTIES
    ('table_type'='ICEBERG', ...)`` -> Trino's ``CREATE TABLE t (...) WITH (format, location,
    partitioning)``. Hive tables (no ``table_type``) are left for ``hive_ddl``."""
    sql = stmt.sql
    m = _CREATE_HIVE.match(sql)
    if not m:
        return stmt
    close = _balanced(sql, m.end() - 1)
    cols_text, rest = sql[m.end() : close], sql[close + 1 :]
    props = {}
    pm = re.search(r"\bTBLPROPERTIES\s*\(", rest, re.I)
    if pm:
        props = _props(rest[pm.end() : _balanced(rest, pm.end() - 1)])
    if props.get("table_type", "").lower() != "iceberg":
        return stmt
    if m.group(1):
        raise Refused(
            "INVALID_TABLE_PROPERTY",
            "CREATE EXTERNAL TABLE is not supported for Iceberg tables: use CREATE TABLE",
        )
    loc = re.search(r"\bLOCATION\s+'([^']*)'", rest, re.I)
    if not loc:
        raise Refused(
            "INVALID_TABLE_PROPERTY",
            "an Iceberg table needs a LOCATION (Athena has no default location for it)",
        )
    columns = []
    for c in _split_top(cols_text):
        cm = re.match(r'\s*(`[^`]+`|"[^"]+"|\w+)\s+(.*?)(\s+COMMENT\s+\'.*\')?\s*$', c, re.I | re.S)
        if not cm:
            raise Refused("SYNTAX_ERROR", f"cannot read the column definition '{c}'")
        name = cm.group(1).strip('`"')
        ty = cm.group(2).strip()
        base = ty.lower().split("(")[0].strip()
        if base in ICEBERG_REFUSED_TYPES:
            raise Refused(
                "NOT_SUPPORTED",
                f"Unsupported Hive type: {base} (column {name}): Iceberg tables on Athena do not "
                "store tinyint, smallint or char; use int, bigint or string",
            )
        columns.append(f'"{name}" {trino_type(ty)}')
    fmt = props.get("format", "parquet").upper()
    with_ = [f"format = '{fmt}'", f"location = '{loc.group(1)}'"]
    part = re.search(r"\bPARTITIONED\s+BY\s*\(", rest, re.I)
    if part:
        parts = _split_top(rest[part.end() : _balanced(rest, part.end() - 1)])
        with_.append(
            "partitioning = ARRAY[" + ", ".join(f"'{_partition_transform(p)}'" for p in parts) + "]"
        )
    if_not = "IF NOT EXISTS " if m.group(2) else ""
    stmt.sql = (
        f"CREATE TABLE {if_not}{m.group(3)} ({', '.join(columns)}) WITH ({', '.join(with_)})"
    )
    return stmt


# What Athena's Hive DDL names, as Glue stores it.
_STORED_AS = {
    "PARQUET": (
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    ),
    "TEXTFILE": (
        "org.apache.hadoop.mapred.TextInputFormat",
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
    ),
    "ORC": (
        "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
        "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
        "org.apache.hadoop.hive.ql.io.orc.OrcSerde",
    ),
}


def _hive_type(t: str) -> str:
    """A column type as Glue keeps it for Hive tables (Hive spelling, lower case)."""
    return re.sub(r"\s+", "", t.strip().lower()).replace("integer", "int")


def hive_ddl(stmt: Statement) -> Statement:
    """``CREATE EXTERNAL TABLE`` (a Hive table over files: CSV, JSON, Parquet, ORC, partitioned
    or not) is what Athena keeps in Glue and never runs on its engine; Trino's Hive connector
    cannot create one on moto, so the stand-in makes the Glue table as Athena would."""
    sql = stmt.sql
    m = _CREATE_HIVE.match(sql)
    if not m or not m.group(1):
        return stmt
    close = _balanced(sql, m.end() - 1)
    cols_text, rest = sql[m.end() : close], sql[close + 1 :]
    name = m.group(3).replace('"', "").replace("`", "")
    db, _, table = name.rpartition(".")
    if db.lower().startswith("iceberg."):
        db = db[len("iceberg.") :]
    columns = []
    for c in _split_top(cols_text):
        cm = re.match(r'\s*(`[^`]+`|"[^"]+"|\w+)\s+(.*?)(\s+COMMENT\s+\'(.*)\')?\s*$', c, re.I | re.S)
        if not cm:
            raise Refused("SYNTAX_ERROR", f"cannot read the column definition '{c}'")
        col = {"Name": cm.group(1).strip('`"').lower(), "Type": _hive_type(cm.group(2))}
        if cm.group(4):
            col["Comment"] = cm.group(4)
        columns.append(col)
    partitions = []
    part = re.search(r"\bPARTITIONED\s+BY\s*\(", rest, re.I)
    if part:
        for c in _split_top(rest[part.end() : _balanced(rest, part.end() - 1)]):
            pname, _, ptype = c.strip().partition(" ")
            partitions.append({"Name": pname.strip('`"').lower(), "Type": _hive_type(ptype)})
    loc = re.search(r"\bLOCATION\s+'([^']*)'", rest, re.I)
    if not loc:
        raise Refused("SYNTAX_ERROR", "CREATE EXTERNAL TABLE needs a LOCATION")
    props = {}
    pm = re.search(r"\bTBLPROPERTIES\s*\(", rest, re.I)
    if pm:
        props = _props(rest[pm.end() : _balanced(rest, pm.end() - 1)])
    serde_params: dict[str, str] = {}
    sp = re.search(r"\bWITH\s+SERDEPROPERTIES\s*\(", rest, re.I)
    if sp:
        serde_params = _props(rest[sp.end() : _balanced(rest, sp.end() - 1)])
    stored = re.search(r"\bSTORED\s+AS\s+(\w+)", rest, re.I)
    fmt = stored.group(1).upper() if stored else "TEXTFILE"
    if fmt not in _STORED_AS:
        raise Refused("NOT_SUPPORTED", f"STORED AS {fmt} is not supported here: use PARQUET, ORC or TEXTFILE")
    in_fmt, out_fmt, serde = _STORED_AS[fmt]
    sm = re.search(r"\bROW\s+FORMAT\s+SERDE\s+'([^']+)'", rest, re.I)
    if sm:
        serde = sm.group(1)
    dm = re.search(r"\bFIELDS\s+TERMINATED\s+BY\s+'([^']*)'", rest, re.I)
    if dm:
        serde_params.setdefault("field.delim", dm.group(1).encode().decode("unicode_escape"))
    if "OpenCSVSerde" in serde and "separatorChar" not in serde_params:
        serde_params["separatorChar"] = ","
    stmt.glue = {
        "action": "create_table",
        "database": db.lower(),
        "if_not_exists": bool(m.group(2)),
        "table_input": {
            "Name": table.lower(),
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"EXTERNAL": "TRUE", **props},
            "PartitionKeys": partitions,
            "StorageDescriptor": {
                "Columns": columns,
                "Location": loc.group(1),
                "InputFormat": in_fmt,
                "OutputFormat": out_fmt,
                "SerdeInfo": {"SerializationLibrary": serde, "Parameters": serde_params},
            },
        },
    }
    return stmt


def _table_name(text: str) -> tuple[str, str]:
    name = text.replace('"', "").replace("`", "").lower()
    if name.startswith("iceberg.") or name.startswith("awsdatacatalog."):
        name = name.split(".", 1)[1]
    db, _, table = name.rpartition(".")
    return db, table


_ALTER_PARTITION = re.compile(
    r"^\s*ALTER\s+TABLE\s+([\w.\"`]+)\s+(ADD|DROP)\s+(IF\s+(?:NOT\s+)?EXISTS\s+)?(.*)$", re.I | re.S
)
_SET_PROPERTIES = re.compile(r"^\s*ALTER\s+TABLE\s+([\w.\"`]+)\s+SET\s+TBLPROPERTIES\s*\(", re.I)
_MSCK = re.compile(r"^\s*MSCK\s+REPAIR\s+TABLE\s+([\w.\"`]+)\s*$", re.I)


def hive_partitions(stmt: Statement) -> Statement:
    """``ALTER TABLE t ADD|DROP [IF [NOT] EXISTS] PARTITION (k='v') [LOCATION '..'] ...`` and
    ``MSCK REPAIR TABLE t`` on a Hive table: Glue partitions, as Athena keeps them (MSCK finds
    the ``k=v/`` folders under the table's location)."""
    m = _MSCK.match(stmt.sql)
    if m:
        db, table = _table_name(m.group(1))
        stmt.glue = {"action": "msck", "database": db, "table": table}
        return stmt
    m = _ALTER_PARTITION.match(stmt.sql)
    if not m or not re.match(r"\s*PARTITION\b", m.group(4), re.I):
        return stmt
    db, table = _table_name(m.group(1))
    specs = []
    for pm in re.finditer(r"PARTITION\s*\(([^)]*)\)(\s*LOCATION\s+'([^']*)')?", m.group(4), re.I):
        values = {k: v for k, v in _props(pm.group(1)).items()}
        specs.append({"values": values, "location": pm.group(3)})
    stmt.glue = {
        "action": "add_partitions" if m.group(2).upper() == "ADD" else "drop_partitions",
        "database": db,
        "table": table,
        "if": bool(m.group(3)),
        "partitions": specs,
    }
    return stmt


def set_properties(stmt: Statement) -> Statement:
    """``ALTER TABLE t SET TBLPROPERTIES ('k'='v', ...)``: the Glue table's parameters."""
    m = _SET_PROPERTIES.match(stmt.sql)
    if m:
        db, table = _table_name(m.group(1))
        props = _props(stmt.sql[m.end() : _balanced(stmt.sql, m.end() - 1)])
        stmt.glue = {"action": "set_properties", "database": db, "table": table, "properties": props}
    return stmt


_ADD_COLUMNS = re.compile(r"^\s*ALTER\s+TABLE\s+([\w.\"`]+)\s+ADD\s+COLUMNS\s*\(", re.I)
_CHANGE_COLUMN = re.compile(
    r'^\s*ALTER\s+TABLE\s+([\w.\"`]+)\s+CHANGE\s+(?:COLUMN\s+)?("[^"]+"|\w+)\s+("[^"]+"|\w+)\s+(.+?)'
    r"(\s+COMMENT\s+'(?:[^']|'')*')?(\s+(?:FIRST|AFTER\s+\S+))?\s*$",
    re.I | re.S,
)


def iceberg_columns(stmt: Statement) -> Statement:
    """Athena's column DDL -> Trino's: ``ADD COLUMNS (c t, ...)`` is one ``ADD COLUMN`` each;
    ``CHANGE [COLUMN] c c t`` sets the type (a rename first when the names differ). ``DROP
    COLUMN c`` is the same in both. Reordering (FIRST/AFTER) has no Trino form and is refused."""
    m = _ADD_COLUMNS.match(stmt.sql)
    if m:
        close = _balanced(stmt.sql, m.end() - 1)
        table = m.group(1)
        sqls = []
        for col in _split_top(stmt.sql[m.end() : close]):
            name, _, ty = col.strip().partition(" ")
            sqls.append(f"ALTER TABLE {table} ADD COLUMN {name} {trino_type(ty)}")
        if not sqls:
            raise Refused("SYNTAX_ERROR", "ADD COLUMNS needs at least one column")
        stmt.sql, stmt.extra = sqls[0], sqls[1:] + stmt.extra
        return stmt
    m = _CHANGE_COLUMN.match(stmt.sql)
    if m:
        table, old, new, ty = m.group(1), m.group(2), m.group(3), m.group(4)
        if m.group(6):
            raise Refused("NOT_SUPPORTED", "the stand-in cannot reorder columns (FIRST/AFTER)")
        sqls = []
        if old.strip('"').lower() != new.strip('"').lower():
            sqls.append(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
        sqls.append(f"ALTER TABLE {table} ALTER COLUMN {new} SET DATA TYPE {trino_type(ty)}")
        stmt.sql, stmt.extra = sqls[0], sqls[1:] + stmt.extra
    return stmt


_CTAS = re.compile(r"^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?([\w.\"`]+)\s+WITH\s*\(", re.I)


def ctas_properties(stmt: Statement) -> Statement:
    """Athena's CTAS properties -> Trino's: ``table_type='ICEBERG'``, ``is_external=false`` go,
    ``partitioning`` transforms take Trino's argument order; Iceberg types are checked."""
    m = _CTAS.match(stmt.sql)
    if not m:
        return stmt
    close = _balanced(stmt.sql, m.end() - 1)
    props = _props(stmt.sql[m.end() : close])
    table_type = props.pop("table_type", "hive").lower()
    if table_type == "hive":
        return _hive_ctas(stmt, m, close, props)
    if table_type != "iceberg":
        raise Refused("INVALID_TABLE_PROPERTY", f"Unsupported table_type: {table_type}")
    props.pop("is_external", None)
    out = []
    for k, v in props.items():
        if k == "partitioning" or k == "partitioned_by":
            inner = v[v.find("[") + 1 : v.rfind("]")]
            items = [p.strip().strip("'") for p in _split_top(inner)]
            out.append(
                "partitioning = ARRAY[" + ", ".join(f"'{_partition_transform(p)}'" for p in items) + "]"
            )
        elif k == "format":
            out.append(f"format = '{v.upper()}'")
        elif k == "location":
            out.append(f"location = '{v}'")
        elif k in ("vacuum_min_snapshots_to_keep", "vacuum_max_snapshot_age_seconds",
                   "optimize_rewrite_delete_file_threshold", "write_compression",
                   "optimize_rewrite_data_file_threshold", "vacuum_max_metadata_files_to_keep"):
            continue  # Athena-only tuning; Trino's defaults stand in.
        else:
            raise Refused("INVALID_TABLE_PROPERTY", f"Unsupported table property: {k}")
    rest = stmt.sql[close + 1 :]
    stmt.sql = stmt.sql[: m.end() - 1] + "(" + ", ".join(out) + ")" + rest
    return stmt


# Athena's CTAS formats -> Trino's Hive connector's.
_HIVE_FORMATS = {"parquet": "PARQUET", "orc": "ORC", "avro": "AVRO", "json": "JSON", "textfile": "TEXTFILE"}


def _hive_ctas(stmt: Statement, m: re.Match, close: int, props: dict[str, str]) -> Statement:
    """A CTAS with ``table_type='hive'`` (Athena's default, as dbt-athena's seeds and tables send
    it) -> Trino's Hive connector, in the ``hive`` catalog: ``external_location``, ``format``
    (Parquet when not given, as on Athena), ``partitioned_by``, ``bucketed_by``/``bucket_count``,
    ``field_delimiter``. ``is_external`` and ``write_compression`` have nothing to map to."""
    props.pop("is_external", None)
    out = []
    fmt = props.pop("format", "parquet").lower()
    if fmt not in _HIVE_FORMATS:
        raise Refused("INVALID_TABLE_PROPERTY", f"Unsupported format: {fmt}")
    out.append(f"format = '{_HIVE_FORMATS[fmt]}'")
    for k, v in props.items():
        if k == "external_location":
            out.append(f"external_location = '{v}'")
        elif k in ("partitioned_by", "bucketed_by"):
            inner = v[v.find("[") + 1 : v.rfind("]")]
            items = [p.strip().strip("'").lower() for p in _split_top(inner)]
            out.append(f"{k} = ARRAY[" + ", ".join(f"'{i}'" for i in items) + "]")
        elif k == "bucket_count":
            out.append(f"bucket_count = {int(v)}")
        elif k == "field_delimiter":
            out.append(f"textfile_field_separator = '{v}'")
        elif k == "write_compression":
            continue  # Trino's Hive connector takes the codec per session; its default stands in.
        else:
            raise Refused("INVALID_TABLE_PROPERTY", f"Unsupported table property: {k}")
    db, table = _table_name(m.group(2))
    name = f'"{db}"."{table}"' if db else f'"{table}"'
    head = stmt.sql[: m.start(2)] + name + stmt.sql[m.end(2) : m.end() - 1]
    stmt.sql = head + "(" + ", ".join(out) + ")" + stmt.sql[close + 1 :]
    stmt.catalog = "hive"
    return stmt


_OPTIMIZE = re.compile(
    r"^\s*OPTIMIZE\s+([\w.\"`]+)\s+REWRITE\s+DATA\s+USING\s+BIN_PACK(\s+WHERE\s+(.*))?$", re.I | re.S
)


def optimize(stmt: Statement) -> Statement:
    """``OPTIMIZE t REWRITE DATA USING BIN_PACK [WHERE p]`` -> ``ALTER TABLE t EXECUTE optimize``."""
    m = _OPTIMIZE.match(stmt.sql.rstrip().rstrip(";"))
    if m:
        where = f" WHERE {m.group(3)}" if m.group(3) else ""
        stmt.sql = f"ALTER TABLE {m.group(1)} EXECUTE optimize{where}"
    return stmt


_VACUUM = re.compile(r"^\s*VACUUM\s+([\w.\"`]+)\s*;?\s*$", re.I)


def vacuum(stmt: Statement) -> Statement:
    """``VACUUM t`` -> expire snapshots older than the table's ``vacuum_max_snapshot_age_seconds``
    (Athena's default: 5 days), then remove orphan files as old, as Athena's VACUUM does. The age
    is the table's property, filled in where the statement runs (``Statement.vacuum``)."""
    m = _VACUUM.match(stmt.sql)
    if m:
        t = m.group(1)
        stmt.vacuum = _table_name(t)
        stmt.sql = f"ALTER TABLE {t} EXECUTE expire_snapshots(retention_threshold => '{VACUUM_AGE}s')"
        stmt.extra.append(
            f"ALTER TABLE {t} EXECUTE remove_orphan_files(retention_threshold => '{VACUUM_AGE}s')"
        )
    return stmt


def _athena_pattern(p: str) -> str:
    """Athena's SHOW pattern (``*`` any text, ``|`` alternatives, case-insensitive) as a regex."""
    return "(?i)" + "|".join("(?:" + ".*".join(re.escape(x) for x in alt.split("*")) + ")" for alt in p.split("|"))


_SHOW_TABLES = re.compile(r"^\s*SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+([\w\".]+))?(?:\s+(?:LIKE\s+)?'([^']*)')?\s*$", re.I)
_SHOW_DATABASES = re.compile(r"^\s*SHOW\s+(?:DATABASES|SCHEMAS)(?:\s+(?:LIKE\s+)?'([^']*)')?\s*$", re.I)
_SHOW_COLUMNS = re.compile(
    r"^\s*SHOW\s+COLUMNS\s+(?:IN|FROM)\s+([\w\".]+)(?:\s+(?:IN|FROM)\s+([\w\"]+))?\s*$", re.I
)
_SHOW_PARTITIONS = re.compile(r"^\s*SHOW\s+PARTITIONS\s+([\w\".]+)\s*$", re.I)


def show(stmt: Statement) -> Statement:
    """Athena's SHOW forms -> Trino's: ``SHOW TABLES [IN db] ['pat*|x']``, ``SHOW DATABASES
    [LIKE 'pat']`` (SHOW SCHEMAS), ``SHOW COLUMNS IN t [IN db]``, ``SHOW PARTITIONS t`` (the
    Hive table's ``$partitions``, printed ``k=v/k2=v2`` by the API). Patterns filter the rows."""
    m = _SHOW_TABLES.match(stmt.sql)
    if m:
        stmt.sql = "SHOW TABLES" + (f" FROM {m.group(1)}" if m.group(1) else "")
        stmt.row_filter = _athena_pattern(m.group(2)) if m.group(2) else None
        return stmt
    m = _SHOW_DATABASES.match(stmt.sql)
    if m:
        stmt.sql = "SHOW SCHEMAS"
        stmt.row_filter = _athena_pattern(m.group(1)) if m.group(1) else None
        return stmt
    m = _SHOW_COLUMNS.match(stmt.sql)
    if m:
        table = m.group(1) if not m.group(2) else f"{m.group(2)}.{m.group(1)}"
        stmt.sql = f"SHOW COLUMNS FROM {table}"
        return stmt
    m = _SHOW_PARTITIONS.match(stmt.sql)
    if m:
        db, table = _table_name(m.group(1))
        name = f'"{db}"."{table}$partitions"' if db else f'"{table}$partitions"'
        stmt.sql = f"SELECT * FROM {name}"
        stmt.catalog = "hive"
    return stmt


_CREATE_DATABASE = re.compile(
    r"^\s*CREATE\s+(?:DATABASE|SCHEMA)\s+(IF\s+NOT\s+EXISTS\s+)?([\w\"`.]+)(.*)$", re.I | re.S
)
_DROP_DATABASE = re.compile(
    r"^\s*DROP\s+(?:DATABASE|SCHEMA)\s+(IF\s+EXISTS\s+)?([\w\"`.]+)\s*(CASCADE|RESTRICT)?\s*$", re.I
)


def databases(stmt: Statement) -> Statement:
    """Athena's ``CREATE DATABASE [IF NOT EXISTS] db [COMMENT '..'] [LOCATION '..'] [WITH
    DBPROPERTIES (..)]`` -> Trino's ``CREATE SCHEMA [IF NOT EXISTS] db [WITH (location = '..')]``
    (the comment and properties have no Trino form); ``DROP DATABASE [IF EXISTS] db
    [CASCADE|RESTRICT]`` -> ``DROP SCHEMA``."""
    m = _CREATE_DATABASE.match(stmt.sql)
    if m:
        loc = re.search(r"\bLOCATION\s+'([^']*)'", m.group(3), re.I)
        with_ = f" WITH (location = '{loc.group(1)}')" if loc else ""
        stmt.sql = f"CREATE SCHEMA {m.group(1) or ''}{m.group(2)}{with_}"
        return stmt
    m = _DROP_DATABASE.match(stmt.sql)
    if m:
        mode = f" {m.group(3).upper()}" if m.group(3) else ""
        stmt.sql = f"DROP SCHEMA {m.group(1) or ''}{m.group(2)}{mode}"
    return stmt


def no_trailing_semicolon(stmt: Statement) -> Statement:
    """Athena takes one statement with an optional trailing ``;``; Trino's client takes none."""
    stmt.sql = stmt.sql.rstrip().rstrip(";").rstrip()
    return stmt


RULES = [
    no_trailing_semicolon,
    lambda s: Statement(backticks(s.sql), s.extra, s.glue, s.catalog, s.row_filter),
    lambda s: Statement(data_catalog(s.sql), s.extra, s.glue, s.catalog, s.row_filter),
    show,
    databases,
    iceberg_ddl,
    hive_ddl,
    hive_partitions,
    set_properties,
    iceberg_columns,
    ctas_properties,
    optimize,
    vacuum,
]


def translate(sql: str) -> Statement:
    """The Trino statement(s) for one Athena statement; ``Refused`` when Athena would refuse it."""
    stmt = Statement(strip_leading_comments(sql))
    if not stmt.sql.strip():
        raise Refused("SYNTAX_ERROR", "line 1:1: the query is empty")
    for rule in RULES:
        stmt = rule(stmt)
    return stmt


def statement_type(sql: str) -> str:
    """Athena's StatementType: DDL, DML (queries, writes, CTAS) or UTILITY (SHOW, DESCRIBE...)."""
    s = without_comments(sql).lstrip().lstrip("(").lower()
    word = s.split(None, 1)[0] if s.split() else ""
    if word in ("select", "with", "values", "insert", "update", "delete", "merge", "table"):
        return "DML"
    if word in ("show", "describe", "explain", "use"):
        return "UTILITY"
    if word == "create" and re.match(r"create\s+table\b.*?\bas\b\s*(\(|select|with)", s, re.S):
        return "DML"
    return "DDL"


def substatement_type(sql: str) -> str:
    """Athena's SubstatementType: SELECT, INSERT, MERGE, CREATE_TABLE_AS_SELECT, CREATE_TABLE..."""
    s = without_comments(sql).lstrip().lstrip("(").lower()
    words = re.findall(r"[a-z_]+", s[:200])
    first = words[0] if words else ""
    if first in ("select", "with", "values", "table"):
        return "SELECT"
    if first in ("insert", "update", "delete", "merge", "describe", "explain", "msck", "vacuum", "optimize"):
        return first.upper()
    if first == "show":
        return "SHOW_" + (words[1].upper() if len(words) > 1 else "")
    if first in ("create", "drop", "alter"):
        if statement_type(sql) == "DML":
            return "CREATE_TABLE_AS_SELECT"
        kinds = [w for w in words[1:4] if w in ("table", "view", "database", "schema")]
        kind = kinds[0] if kinds else (words[1] if len(words) > 1 else "")
        return f"{first.upper()}_{'DATABASE' if kind == 'schema' else kind.upper()}"
    return first.upper()
