"""moto's Glue, made to keep what Iceberg's Glue catalog relies on.

Real Glue refuses an UpdateTable whose ``VersionId`` is not the table's current version
(ConcurrentModificationException): that is how two Iceberg writers that read the same metadata
learn that one of them lost the race, and retry. moto 5.2.5 accepts a stale VersionId, so
concurrent commits are silently lost (measured: 12 of 18 concurrent inserts kept). Here the check
and the update happen under one lock.

Trino's Hive connector also calls the column-statistics actions moto lacks; they answer empty
(statistics are an optimisation; Athena keeps none for Iceberg tables either).
"""

from __future__ import annotations

import json
import threading

from moto.glue.exceptions import GlueClientError
from moto.glue.responses import GlueResponse

_LOCK = threading.Lock()


class ConcurrentModificationException(GlueClientError):
    def __init__(self, message: str):
        super().__init__("ConcurrentModificationException", message)


def install() -> None:
    """Patches moto's Glue responses in this process (idempotent)."""
    if getattr(GlueResponse, "_floe_patched", False):
        return
    original_update = GlueResponse.update_table

    def update_table(self):  # type: ignore[no-untyped-def]
        database = self.parameters.get("DatabaseName")
        table_input = self.parameters.get("TableInput") or {}
        version = self.parameters.get("VersionId")
        with _LOCK:
            if version is not None:
                table = self.glue_backend.get_table(database, table_input.get("Name"))
                current = str(table._current_version)
                if str(version) != current:
                    raise ConcurrentModificationException(
                        f"Update table failed due to concurrent modifications: version {version} "
                        f"is not the table's current version {current}"
                    )
            return original_update(self)

    def delete_column_statistics_for_table(self):  # type: ignore[no-untyped-def]
        return "{}"

    def delete_column_statistics_for_partition(self):  # type: ignore[no-untyped-def]
        return "{}"

    def update_column_statistics_for_table(self):  # type: ignore[no-untyped-def]
        return json.dumps({"Errors": []})

    def update_column_statistics_for_partition(self):  # type: ignore[no-untyped-def]
        return json.dumps({"Errors": []})

    def get_column_statistics_for_table(self):  # type: ignore[no-untyped-def]
        return json.dumps({"ColumnStatisticsList": [], "Errors": []})

    def get_column_statistics_for_partition(self):  # type: ignore[no-untyped-def]
        return json.dumps({"ColumnStatisticsList": [], "Errors": []})

    GlueResponse.update_table = update_table
    for f in (
        delete_column_statistics_for_table,
        delete_column_statistics_for_partition,
        update_column_statistics_for_table,
        update_column_statistics_for_partition,
        get_column_statistics_for_table,
        get_column_statistics_for_partition,
    ):
        setattr(GlueResponse, f.__name__, f)
    GlueResponse._floe_patched = True
