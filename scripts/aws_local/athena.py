"""Athena's API answered by Trino.

moto answers Athena's actions without running SQL. Here the actions that carry queries are
replaced: StartQueryExecution translates the statement (``dialect``) and runs it on Trino's REST
protocol in a thread; GetQueryExecution reports its state, Athena-style failure reasons
(``ERROR_NAME: message``, with AthenaError) and statistics from Trino's query stats
(``physicalInputBytes`` as DataScannedInBytes, elapsed time as engine time); GetQueryResults
pages through the rows as Athena renders them (text values, a header row first for a query,
Athena's type names, UpdateCount for writes); StopQueryExecution cancels the Trino query. The
result CSV and its ``.metadata`` go to the output location in S3, as Athena writes them.
Workgroups, data catalogs and named queries stay moto's.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from moto.athena.models import athena_backends
from moto.athena.responses import AthenaResponse
from moto.core.exceptions import JsonRESTError
from moto.s3.models import s3_backends

from . import dialect

_TRINO: dict[str, str] = {"url": "", "user": "athena"}
_EXECUTIONS: dict[str, "Execution"] = {}
_TOKENS: dict[str, str] = {}
_LOCK = threading.Lock()

# Athena's error categories: 1 system, 2 user, 3 other.
_CATEGORY = {"USER_ERROR": 2, "INTERNAL_ERROR": 1, "INSUFFICIENT_RESOURCES": 1, "EXTERNAL": 1}
# Failures Athena reports as retryable (a commit that lost a race, an internal error).
_RETRYABLE = {"ICEBERG_COMMIT_ERROR", "GENERIC_INTERNAL_ERROR", "HIVE_METASTORE_ERROR"}


class MetadataException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("MetadataException", message)


class InvalidRequestException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidRequestException", message)


def configure(trino_url: str) -> None:
    _TRINO["url"] = trino_url.rstrip("/")


@dataclass
class Execution:
    id: str
    query: str
    workgroup: str
    database: str | None
    catalog: str
    output_location: str | None
    account: str
    region: str
    parameters: list[str] | None
    statement_type: str
    state: str = "QUEUED"
    reason: str | None = None
    error: dict | None = None
    submitted: float = field(default_factory=time.time)
    completed: float | None = None
    columns: list[dict] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    header: bool = False
    update_count: int | None = None
    bytes_scanned: int = 0
    engine_ms: int = 0
    queued_ms: int = 0
    trino_ids: list[str] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    next_uri: str | None = None
    # Guards `state` against the race of a query ending while StopQueryExecution lands.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def move(self, state: str, reason: str | None = None) -> bool:
        """Moves to `state` unless a stop got there first (a cancelled query stays cancelled,
        as on Athena); says whether it moved."""
        with self.lock:
            if self.state == "CANCELLED":
                return False
            self.state = state
            if reason is not None:
                self.reason = reason
            if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                self.completed = time.time()
            return True

    def stop(self) -> bool:
        """StopQueryExecution: a queued or running query is CANCELLED at once (what a poller sees
        next); one already ended is left as it ended. Says whether it was stopped."""
        with self.lock:
            if self.state not in ("QUEUED", "RUNNING"):
                return False
            self.cancelled.set()
            self.state, self.reason, self.completed = "CANCELLED", "Query cancelled by user", time.time()
            return True

    def as_dict(self) -> dict[str, Any]:
        status: dict[str, Any] = {"State": self.state, "SubmissionDateTime": self.submitted}
        if self.completed is not None:
            status["CompletionDateTime"] = self.completed
        if self.reason:
            status["StateChangeReason"] = self.reason
        if self.error:
            status["AthenaError"] = self.error
        total = int(((self.completed or time.time()) - self.submitted) * 1000)
        out: dict[str, Any] = {
            "QueryExecutionId": self.id,
            "Query": self.query,
            "StatementType": self.statement_type,
            "SubstatementType": dialect.substatement_type(self.query or ""),
            "ResultConfiguration": (
                {"OutputLocation": f"{self.output_location.rstrip('/')}/{self.id}.csv"}
                if self.output_location
                else {}
            ),
            "QueryExecutionContext": {
                k: v for k, v in (("Database", self.database), ("Catalog", self.catalog)) if v
            },
            "Status": status,
            "Statistics": {
                "EngineExecutionTimeInMillis": self.engine_ms,
                "DataScannedInBytes": self.bytes_scanned,
                "TotalExecutionTimeInMillis": total,
                "QueryQueueTimeInMillis": self.queued_ms,
                "ServicePreProcessingTimeInMillis": 0,
                "QueryPlanningTimeInMillis": 0,
                "ServiceProcessingTimeInMillis": 0,
                "ResultReuseInformation": {"ReusedPreviousResult": False},
            },
            "WorkGroup": self.workgroup,
            "EngineVersion": {
                "SelectedEngineVersion": "Athena engine version 3",
                "EffectiveEngineVersion": "Athena engine version 3",
            },
        }
        if self.parameters is not None:
            out["ExecutionParameters"] = self.parameters
        return out


def athena_type(trino_type: str) -> tuple[str, int, int]:
    """Athena's name for a Trino type, with precision and scale (decimal) for ColumnInfo."""
    t = trino_type.lower()
    m = re.match(r"decimal\((\d+),\s*(\d+)\)", t)
    if m:
        return "decimal", int(m.group(1)), int(m.group(2))
    if t.startswith("timestamp") and "with time zone" in t:
        return "timestamp with time zone", 3, 0
    for prefix, name in (
        ("varchar", "varchar"),
        ("char", "char"),
        ("timestamp", "timestamp"),
        ("time", "time"),
        ("array", "array"),
        ("map", "map"),
        ("row", "row"),
    ):
        if t.startswith(prefix):
            return name, 0, 0
    if t == "real":
        return "float", 17, 0
    precision = {"bigint": 19, "integer": 10, "smallint": 5, "tinyint": 3, "double": 17}
    return t, precision.get(t, 0), 0


def _double(v: float) -> str:
    """A double as Java prints it (Athena's engine is Java): 1.5, 1.0E10, 1.5E-5, NaN."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "0.0" if math.copysign(1, v) > 0 else "-0.0"
    if 1e-3 <= abs(v) < 1e7:
        r = repr(v)
        return r if "." in r else r + ".0"
    mantissa, exponent = format(Decimal(repr(v)).normalize(), "E").split("E")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exponent)}"


def render(value: Any, trino_type: str) -> str | None:
    """A value from Trino's JSON protocol as Athena renders it in results (text)."""
    if value is None:
        return None
    t = trino_type.lower()
    if t in ("double", "real"):
        return _double(float(value)) if not isinstance(value, str) else value
    if t == "boolean":
        return "true" if value else "false"
    if t.startswith("array"):
        inner = t[t.find("(") + 1 : t.rfind(")")]
        return "[" + ", ".join(render(v, inner) or "null" for v in value) + "]"
    if t.startswith("map"):
        return "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}"
    if t.startswith("row"):
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}"
        return "{" + ", ".join("null" if v is None else str(v) for v in value) + "}"
    if t == "varbinary":
        return base64.b64decode(value).hex(" ")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _substitute(sql: str, parameters: list[str] | None) -> str:
    """ExecutionParameters fill the ``?`` placeholders in order, as SQL text."""
    if not parameters:
        return sql
    out, params = [], list(parameters)
    for code, text in dialect._outside_literals(sql):
        if code:
            while "?" in text and params:
                i = text.index("?")
                out.append(text[:i] + params.pop(0))
                text = text[i + 1 :]
        out.append(text)
    if params:
        raise dialect.Refused(
            "INVALID_PARAMETER", f"{len(parameters)} execution parameters for fewer placeholders"
        )
    return "".join(out)


class _Failed(Exception):
    def __init__(self, name: str, message: str, error_type: str = "USER_ERROR"):
        super().__init__(message)
        self.name, self.message, self.error_type = name, message, error_type


def _run_on_trino(ex: Execution, sql: str, catalog: str = "iceberg") -> tuple[list[dict], list[list[Any]], dict]:
    """Runs one statement on Trino to the end; returns columns, raw rows and the last stats."""
    headers = {
        "X-Trino-User": _TRINO["user"],
        "X-Trino-Source": "floe-athena-local",
        "X-Trino-Catalog": catalog,
        "X-Trino-Time-Zone": "UTC",
        # Timestamps at their own precision (microseconds for Iceberg), not cut to milliseconds.
        "X-Trino-Client-Capabilities": "PARAMETRIC_DATETIME",
    }
    if ex.database:
        headers["X-Trino-Schema"] = ex.database
    r = requests.post(f"{_TRINO['url']}/v1/statement", data=sql.encode(), headers=headers, timeout=60)
    r.raise_for_status()
    doc = r.json()
    ex.trino_ids.append(doc["id"])
    columns: list[dict] = []
    rows: list[list[Any]] = []
    stats: dict = {}
    while True:
        columns = doc.get("columns") or columns
        rows.extend(doc.get("data") or [])
        stats = doc.get("stats") or stats
        if doc.get("error"):
            e = doc["error"]
            raise _Failed(e.get("errorName", "GENERIC_INTERNAL_ERROR"), e.get("message", ""), e.get("errorType", "INTERNAL_ERROR"))
        if "updateCount" in doc:
            ex.update_count = doc["updateCount"]
        nxt = doc.get("nextUri")
        if not nxt:
            break
        ex.next_uri = nxt
        if ex.cancelled.is_set():
            requests.delete(nxt, timeout=10)
            raise _Failed("USER_CANCELED", "Query was cancelled by the user", "USER_ERROR")
        r = requests.get(nxt, headers={"X-Trino-User": _TRINO["user"]}, timeout=60)
        if r.status_code in (502, 503):
            time.sleep(0.05)
            continue
        r.raise_for_status()
        doc = r.json()
    if doc.get("updateType") and ex.update_count is None and rows and len(rows[0]) == 1:
        # CTAS and INSERT answer one row with the count.
        try:
            ex.update_count = int(rows[0][0])
        except (TypeError, ValueError):
            pass
    if doc.get("updateType"):
        columns, rows = [], []
    return columns, rows, stats


def _run(ex: Execution) -> None:
    try:
        stmt = dialect.translate(_substitute(ex.query, ex.parameters))
        if not ex.move("RUNNING"):
            return
        if stmt.glue:
            _run_on_glue(ex, stmt.glue)
            _write_results(ex)
            ex.move("SUCCEEDED")
            return
        if stmt.vacuum:
            age = str(_vacuum_age(ex, *stmt.vacuum))
            stmt.sql = stmt.sql.replace(dialect.VACUUM_AGE, age)
            stmt.extra = [e.replace(dialect.VACUUM_AGE, age) for e in stmt.extra]
        started = time.time()
        columns: list[dict] = []
        raw: list[list[Any]] = []
        for sql in [stmt.sql, *stmt.extra]:
            columns, raw, stats = _run_on_trino(ex, sql, stmt.catalog)
            ex.bytes_scanned += int(stats.get("physicalInputBytes") or 0)
            ex.queued_ms += int(stats.get("queuedTimeMillis") or 0)
        ex.engine_ms = int((time.time() - started) * 1000)
        types = [c.get("type", "varchar") for c in columns]
        if ex.statement_type == "UTILITY":
            name, ex.rows = utility_rows(dialect.substatement_type(ex.query), columns, raw, stmt.row_filter)
            ex.columns = [_column_info(name, "varchar")]
        else:
            ex.rows = [[render(v, t) for v, t in zip(row, types)] for row in raw]
            ex.columns = [_column_info(c["name"], c.get("type", "varchar")) for c in columns]
            ex.header = bool(columns)
        _write_results(ex)
        ex.move("SUCCEEDED")
    except dialect.Refused as e:
        _fail(ex, e.error_name, e.message, "USER_ERROR")
    except _Failed as e:
        if e.name == "USER_CANCELED" or ex.cancelled.is_set():
            ex.move("CANCELLED", "Query cancelled by user")
        else:
            _fail(ex, e.name, e.message, e.error_type)
    except Exception as e:  # noqa: BLE001 - any other failure is the stand-in's, reported as Athena's internal error
        if ex.cancelled.is_set():
            ex.move("CANCELLED", "Query cancelled by user")
            return
        _fail(ex, "GENERIC_INTERNAL_ERROR", f"{type(e).__name__}: {e}", "INTERNAL_ERROR")
    finally:
        with ex.lock:
            if ex.completed is None:
                ex.completed = time.time()


def _vacuum_age(ex: Execution, database: str, table: str) -> int:
    """The table's ``vacuum_max_snapshot_age_seconds`` (Glue parameter), else Athena's default."""
    from moto.glue.models import glue_backends

    glue = glue_backends[ex.account][ex.region]
    try:
        t = glue.get_table(database or (ex.database or "default"), table)
        params = t.get_version(str(t._current_version)).get("Parameters") or {}
        return int(params.get("vacuum_max_snapshot_age_seconds", dialect.VACUUM_DEFAULT_AGE))
    except Exception:  # noqa: BLE001 - no such table: Trino's own error follows
        return dialect.VACUUM_DEFAULT_AGE


def _run_on_glue(ex: Execution, action: dict) -> None:
    """DDL Athena keeps in Glue only (Hive tables), done on moto's Glue in this process."""
    from moto.glue.exceptions import TableAlreadyExistsException
    from moto.glue.models import glue_backends

    glue = glue_backends[ex.account][ex.region]
    database = action["database"] or (ex.database or "default")
    if action["action"] in ("add_partitions", "drop_partitions", "msck", "set_properties"):
        try:
            table = glue.get_table(database, action["table"])
        except Exception as e:  # noqa: BLE001 - moto's not-found, as Athena words it
            raise _Failed("TABLE_NOT_FOUND", f"Table {database}.{action['table']} does not exist") from e
        current = table.get_version(str(table._current_version))
        keys = [k["Name"] for k in current.get("PartitionKeys") or []]
        location = (current.get("StorageDescriptor") or {}).get("Location", "").rstrip("/")
        existing = {tuple(p.values) if hasattr(p, "values") else None for p in table.partitions.values()}
        if action["action"] == "set_properties":
            updated = dict(current)
            updated["Parameters"] = {**(current.get("Parameters") or {}), **action["properties"]}
            table.update(updated)
            return
        if action["action"] == "msck":
            found = _partition_folders(ex.account, location, keys)
            specs = [{"values": v, "location": None} for v in found]
        else:
            specs = action["partitions"]
        for spec in specs:
            values = [str(spec["values"].get(k, "")) for k in keys]
            if set(spec["values"]) != set(keys):
                raise _Failed("HIVE_METASTORE_ERROR", f"partition {spec['values']} does not name every partition key {keys}")
            key = "/".join(f"{k}={v}" for k, v in zip(keys, values))
            if action["action"] == "drop_partitions":
                try:
                    glue.delete_partition(database, action["table"], values)
                except Exception as e:  # noqa: BLE001
                    if not action.get("if"):
                        raise _Failed("HIVE_METASTORE_ERROR", f"partition {key} does not exist") from e
                continue
            if tuple(values) in existing:
                if action["action"] == "msck" or action.get("if"):
                    continue
                raise _Failed("ALREADY_EXISTS", f"partition {key} already exists")
            sd = dict(current.get("StorageDescriptor") or {})
            sd["Location"] = spec.get("location") or f"{location}/{key}/"
            glue.create_partition(database, action["table"], {"Values": values, "StorageDescriptor": sd})
        return
    if action["action"] == "create_table":
        try:
            glue.get_database(database)
        except Exception as e:  # noqa: BLE001 - moto's not-found, as Athena words it
            raise _Failed("SCHEMA_NOT_FOUND", f"Schema {database} does not exist") from e
        try:
            glue.create_table(database, action["table_input"]["Name"], action["table_input"])
        except TableAlreadyExistsException as e:
            if not action["if_not_exists"]:
                raise _Failed("ALREADY_EXISTS", f"Table {database}.{action['table_input']['Name']} already exists") from e


def _partition_folders(account: str, location: str, keys: list[str]) -> list[dict[str, str]]:
    """The ``k1=v1/k2=v2/`` folders under an S3 location (what MSCK REPAIR TABLE adds)."""
    m = re.match(r"s3://([^/]+)/?(.*)", location)
    if not m or not keys:
        return []
    bucket, prefix = m.group(1), m.group(2).strip("/")
    backend = s3_backends[account]["aws"]
    found: dict[tuple, dict[str, str]] = {}
    start = f"{prefix}/" if prefix else ""
    for key in backend.get_bucket(bucket).keys.keys():
        if not key.startswith(start):
            continue
        parts = key[len(start) :].split("/")[: len(keys)]
        pairs = [p.split("=", 1) for p in parts if "=" in p]
        if len(pairs) == len(keys) and [k for k, _ in pairs] == keys:
            values = {k: v for k, v in pairs}
            found[tuple(values.values())] = values
    return list(found.values())


def _fail(ex: Execution, name: str, message: str, error_type: str) -> None:
    if not ex.move("FAILED", f"{name}: {message}"):
        return
    ex.error = {
        "ErrorCategory": _CATEGORY.get(error_type, 3),
        "ErrorType": 1000 if error_type == "USER_ERROR" else 401,
        "Retryable": name in _RETRYABLE,
        "ErrorMessage": ex.reason,
    }


def hive_type(trino_type: str) -> str:
    """A Trino type under its Hive name, as Athena's DESCRIBE and SHOW CREATE TABLE print it."""
    t = trino_type.lower()
    t = re.sub(r"\bvarchar(\(\d+\))?", "string", t)
    t = re.sub(r"\btimestamp\(\d+\)", "timestamp", t)
    t = re.sub(r"\binteger\b", "int", t)
    t = re.sub(r"\breal\b", "float", t)
    t = re.sub(r"\bvarbinary\b", "binary", t)
    t = re.sub(r"\barray\((.*)\)$", r"array<\1>", t)
    t = re.sub(r"\bmap\((.*)\)$", r"map<\1>", t)
    if t.startswith("row("):
        fields = re.sub(r"(\w+) ([\w<>(),]+)", r"\1:\2", t[4:-1])
        t = "struct<" + fields.replace(", ", ",") + ">"
    return t


def utility_rows(
    kind: str, columns: list[dict], raw: list[list[Any]], row_filter: str | None = None
) -> tuple[str, list[list[str | None]]]:
    """SHOW and DESCRIBE as Athena returns them: one text column and no header row, each row one
    line: DESCRIBE in Hive's layout (name, Hive type and comment, each padded to 20 and joined
    by a tab, partition columns again under ``# Partition Information``), SHOW TABLES / SCHEMAS /
    COLUMNS one name per row, anything else Trino's columns joined by a tab."""

    def cell(name: str, type_: str, comment: str) -> list[str | None]:
        return ["\t".join(f"{v:<20}" for v in (name, type_, comment))]

    names = [c["name"].lower() for c in columns]
    if kind == "DESCRIBE" and names[:2] == ["column", "type"]:
        extra = names.index("extra") if "extra" in names else None
        comment = names.index("comment") if "comment" in names else None
        rows, parts = [], []
        for r in raw:
            line = cell(r[0], hive_type(r[1]), (r[comment] or "") if comment is not None else "")
            rows.append(line)
            if extra is not None and "partition key" in (r[extra] or ""):
                parts.append(line)
        if parts:
            rows += [[""], ["# Partition Information"], cell("# col_name", "data_type", "comment"), [""], *parts]
        return "col_name", rows
    if row_filter:
        raw = [r for r in raw if re.fullmatch(row_filter, str(r[0]))]
    if kind == "SHOW_TABLES":
        return "tab_name", [[r[0]] for r in raw]
    if kind in ("SHOW_SCHEMAS", "SHOW_DATABASES"):
        return "database_name", [[r[0]] for r in raw]
    if kind == "SHOW_PARTITIONS":
        return "partition", [["/".join(f"{c['name']}={v}" for c, v in zip(columns, r))] for r in raw]
    if kind == "SHOW_COLUMNS":
        return "field", [[r[0]] for r in raw]
    types = [c.get("type", "varchar") for c in columns]
    return (names[0] if names else "result"), [
        ["\t".join(render(v, t) or "" for v, t in zip(row, types))] for row in raw
    ]


def _column_info(name: str, trino_type: str) -> dict:
    ty, precision, scale = athena_type(trino_type)
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": ty,
        "Precision": precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": ty in ("varchar", "char"),
    }


def _write_results(ex: Execution) -> None:
    """The result CSV (header first for a query) and its metadata, where Athena puts them."""
    if not ex.output_location:
        return
    m = re.match(r"s3://([^/]+)/?(.*)", ex.output_location)
    if not m:
        raise _Failed("INVALID_INPUT", f"the output location {ex.output_location} is not an s3:// URI")
    bucket, prefix = m.group(1), m.group(2).strip("/")
    key = f"{prefix + '/' if prefix else ''}{ex.id}"
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    if ex.header:
        w.writerow([c["Name"] for c in ex.columns])
    for row in ex.rows:
        w.writerow(["" if v is None else v for v in row])
    backend = s3_backends[ex.account]["aws"]
    try:
        if ex.statement_type == "UTILITY":
            backend.put_object(bucket, f"{key}.txt", "\n".join(r[0] or "" for r in ex.rows).encode())
        else:
            backend.put_object(bucket, f"{key}.csv", buf.getvalue().encode())
        backend.put_object(bucket, f"{key}.csv.metadata", json.dumps({"ColumnInfo": ex.columns}).encode())
    except Exception as e:  # noqa: BLE001 - Athena fails a query whose results cannot be written
        raise _Failed("HIVE_PATH_ALREADY_EXISTS" if "exists" in str(e) else "S3_ERROR",
                      f"cannot write the query results to {ex.output_location}: {e}", "EXTERNAL") from e


def _get(exec_id: str) -> Execution:
    ex = _EXECUTIONS.get(exec_id)
    if ex is None:
        raise InvalidRequestException(f"QueryExecution {exec_id} was not found")
    return ex


def install() -> None:
    """Replaces moto's query actions with ones that run on Trino (idempotent)."""
    if getattr(AthenaResponse, "_floe_patched", False):
        return

    def start_query_execution(self):  # type: ignore[no-untyped-def]
        query = self._get_param("QueryString")
        context = self._get_param("QueryExecutionContext") or {}
        config = self._get_param("ResultConfiguration") or {}
        workgroup = self._get_param("WorkGroup") or "primary"
        token = self._get_param("ClientRequestToken")
        backend = athena_backends[self.current_account][self.region]
        wg = backend.get_work_group(workgroup)
        if not wg:
            raise InvalidRequestException(f"WorkGroup {workgroup} is not found.")
        if wg.get("State") == "DISABLED":
            raise InvalidRequestException(f"WorkGroup {workgroup} is disabled.")
        with _LOCK:
            if token and token in _TOKENS:
                return json.dumps({"QueryExecutionId": _TOKENS[token]})
            wg_conf = wg.get("Configuration") or {}
            wg_out = (wg_conf.get("ResultConfiguration") or {}).get("OutputLocation")
            out = config.get("OutputLocation")
            if wg_conf.get("EnforceWorkGroupConfiguration") and wg_out:
                out = wg_out
            out = out or wg_out
            if not out:
                raise InvalidRequestException(
                    "No output location provided. An output location is required either through "
                    "the Workgroup result configuration setting or as an API input."
                )
            ex = Execution(
                id=str(uuid.uuid4()),
                query=query,
                workgroup=workgroup,
                database=(context.get("Database") or "default").lower(),
                catalog=context.get("Catalog") or "AwsDataCatalog",
                output_location=out,
                account=self.current_account,
                region=self.region,
                parameters=self._get_param("ExecutionParameters"),
                statement_type=dialect.statement_type(query or ""),
            )
            _EXECUTIONS[ex.id] = ex
            if token:
                _TOKENS[token] = ex.id
        threading.Thread(target=_run, args=(ex,), daemon=True, name=f"athena-{ex.id}").start()
        return json.dumps({"QueryExecutionId": ex.id})

    def get_query_execution(self):  # type: ignore[no-untyped-def]
        return json.dumps({"QueryExecution": _get(self._get_param("QueryExecutionId")).as_dict()})

    def batch_get_query_execution(self):  # type: ignore[no-untyped-def]
        found, missing = [], []
        for i in self._get_param("QueryExecutionIds") or []:
            if i in _EXECUTIONS:
                found.append(_EXECUTIONS[i].as_dict())
            else:
                missing.append({"QueryExecutionId": i, "ErrorCode": "INVALID_INPUT",
                                "ErrorMessage": "QueryExecution not found"})
        return json.dumps({"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing})

    def list_query_executions(self):  # type: ignore[no-untyped-def]
        wg = self._get_param("WorkGroup") or "primary"
        ids = [e.id for e in sorted(_EXECUTIONS.values(), key=lambda e: -e.submitted) if e.workgroup == wg]
        start = int(self._get_param("NextToken") or 0)
        size = int(self._get_param("MaxResults") or 50)
        out: dict[str, Any] = {"QueryExecutionIds": ids[start : start + size]}
        if start + size < len(ids):
            out["NextToken"] = str(start + size)
        return json.dumps(out)

    def get_query_results(self):  # type: ignore[no-untyped-def]
        ex = _get(self._get_param("QueryExecutionId"))
        if ex.state in ("QUEUED", "RUNNING"):
            raise InvalidRequestException(f"Query has not yet finished. Current state: {ex.state}")
        if ex.state != "SUCCEEDED":
            raise InvalidRequestException(f"Query did not finish successfully. Final query state: {ex.state}")
        size = min(int(self._get_param("MaxResults") or 1000), 1000)
        start = int(self._get_param("NextToken") or 0)
        all_rows = ([[c["Name"] for c in ex.columns]] if ex.header else []) + ex.rows
        page = all_rows[start : start + size]
        out: dict[str, Any] = {
            "ResultSet": {
                "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in page],
                "ResultSetMetadata": {"ColumnInfo": ex.columns},
            }
        }
        if ex.update_count is not None:
            out["UpdateCount"] = ex.update_count
        if start + size < len(all_rows):
            out["NextToken"] = str(start + size)
        return json.dumps(out)

    def stop_query_execution(self):  # type: ignore[no-untyped-def]
        ex = _get(self._get_param("QueryExecutionId"))
        if not ex.stop():
            return "{}"
        for trino_id in ex.trino_ids:
            try:
                requests.delete(f"{_TRINO['url']}/v1/query/{trino_id}", timeout=10,
                                headers={"X-Trino-User": _TRINO["user"]})
            except requests.RequestException:
                pass
        return "{}"

    def _glue(self):  # type: ignore[no-untyped-def]
        from moto.glue.models import glue_backends

        return glue_backends[self.current_account][self.region]

    def _table_metadata(t) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        d = t.as_dict()
        sd = d.get("StorageDescriptor") or {}
        cols = [{k: c[k] for k in ("Name", "Type", "Comment") if k in c} for c in sd.get("Columns") or []]
        return {
            "Name": t.name,
            "CreateTime": t.created_time.timestamp(),
            "TableType": d.get("TableType") or "EXTERNAL_TABLE",
            "Columns": cols,
            "PartitionKeys": [{k: c[k] for k in ("Name", "Type", "Comment") if k in c}
                              for c in d.get("PartitionKeys") or []],
            "Parameters": d.get("Parameters") or {},
        }

    def _page(self, items: list, key: str) -> str:  # type: ignore[no-untyped-def]
        start = int(self._get_param("NextToken") or 0)
        size = int(self._get_param("MaxResults") or 50)
        out: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            out["NextToken"] = str(start + size)
        return json.dumps(out)

    def list_databases(self):  # type: ignore[no-untyped-def]
        """Athena's view of the Glue catalog (``AwsDataCatalog``): every Glue database."""
        dbs = [{"Name": d.name, "Description": (d.input or {}).get("Description", ""),
                "Parameters": (d.input or {}).get("Parameters", {})}
               for d in sorted(_glue(self).get_databases(), key=lambda d: d.name)]
        return _page(self, dbs, "DatabaseList")

    def list_table_metadata(self):  # type: ignore[no-untyped-def]
        database = self._get_param("DatabaseName")
        expression = self._get_param("Expression")
        try:
            tables = _glue(self).get_tables(database, expression)
        except Exception as e:  # noqa: BLE001
            raise MetadataException(f"Database {database} not found.") from e
        return _page(self, [_table_metadata(t) for t in sorted(tables, key=lambda t: t.name)],
                     "TableMetadataList")

    def get_table_metadata(self):  # type: ignore[no-untyped-def]
        database, name = self._get_param("DatabaseName"), self._get_param("TableName")
        try:
            t = _glue(self).get_table(database, name)
        except Exception as e:  # noqa: BLE001
            raise MetadataException(f"Table {name} not found in database {database}.") from e
        return json.dumps({"TableMetadata": _table_metadata(t)})

    # Every account's Athena has the Glue catalog as AwsDataCatalog; moto lists only those made.
    original_list_catalogs = AthenaResponse.list_data_catalogs
    original_get_catalog = AthenaResponse.get_data_catalog
    glue_catalog = {"CatalogName": "AwsDataCatalog", "Type": "GLUE"}

    def list_data_catalogs(self):  # type: ignore[no-untyped-def]
        made = json.loads(original_list_catalogs(self)).get("DataCatalogsSummary", [])
        return json.dumps({"DataCatalogsSummary": [glue_catalog, *[c for c in made if c["CatalogName"] != "AwsDataCatalog"]]})

    def get_data_catalog(self):  # type: ignore[no-untyped-def]
        if (self._get_param("Name") or "").lower() == "awsdatacatalog":
            return json.dumps({"DataCatalog": {"Name": "AwsDataCatalog", "Description": "AWS Glue Data Catalog",
                                               "Type": "GLUE", "Parameters": {"catalog-id": self.current_account}}})
        return original_get_catalog(self)

    for f in (start_query_execution, get_query_execution, batch_get_query_execution,
              list_query_executions, get_query_results, stop_query_execution,
              list_databases, list_table_metadata, get_table_metadata,
              list_data_catalogs, get_data_catalog):
        setattr(AthenaResponse, f.__name__, f)
    AthenaResponse._floe_patched = True
