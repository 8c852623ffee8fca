"""Reads floe tables with pyiceberg, an independent Iceberg implementation.

Usage: read_lake.py LAKE_DIR TABLE [TABLE ...]
Prints one JSON object: for each table, its snapshot ids (in commit order), the current snapshot id
and the rows of every snapshot, each row as a list of strings, sorted.
"""

import datetime
import json
import sys

from pyiceberg.catalog.sql import SqlCatalog


def cell(v):
    """Formats a value the way Arrow's display does on the Rust side."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            suffix = "Z"
        else:
            suffix = ""
        text = v.strftime("%Y-%m-%dT%H:%M:%S")
        # Arrow shows 3 digits for whole milliseconds, else 6.
        if v.microsecond % 1000 == 0 and v.microsecond:
            text += f".{v.microsecond // 1000:03d}"
        elif v.microsecond:
            text += f".{v.microsecond:06d}"
        return text + suffix
    return str(v)


def rows(table, snapshot_id=None):
    scan = table.scan(snapshot_id=snapshot_id) if snapshot_id is not None else table.scan()
    arrow = scan.to_arrow()
    cols = arrow.column_names
    out = [[cell(v) for v in r.values()] for r in arrow.to_pylist()]
    return cols, sorted(out, key=lambda r: [x if x is not None else "" for x in r])


def main():
    lake, names = sys.argv[1], sys.argv[2:]
    catalog = SqlCatalog("floe", uri=f"sqlite:///{lake}/catalog.db", warehouse=f"file://{lake}")
    result = {}
    for name in names:
        table = catalog.load_table(name)
        snapshots = sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.snapshot_id))
        current = table.current_snapshot()
        columns, current_rows = rows(table)
        result[name] = {
            "columns": columns,
            "snapshots": [s.snapshot_id for s in snapshots],
            "current": current.snapshot_id if current else None,
            "rows": current_rows,
            "rows_at": {str(s.snapshot_id): rows(table, s.snapshot_id)[1] for s in snapshots},
            "summaries": {str(s.snapshot_id): dict(s.summary.additional_properties) if s.summary else {} for s in snapshots},
        }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
