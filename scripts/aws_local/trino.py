"""Trino's configuration for the stand-in: one coordinator on loopback, in UTC, with the Iceberg
connector on moto's Glue and S3 and the Hive connector beside it for external tables, each
redirecting to the other so one catalog name (``iceberg``, Athena's ``AwsDataCatalog``) reads
both kinds of table."""

from __future__ import annotations

from pathlib import Path

REGION = "eu-west-2"


def _glue_and_s3(moto: str, region: str, warehouse: str) -> list[str]:
    return [
        "hive.metastore.glue.region=" + region,
        "hive.metastore.glue.endpoint-url=" + moto,
        "hive.metastore.glue.aws-access-key=test",
        "hive.metastore.glue.aws-secret-key=test",
        "hive.metastore.glue.default-warehouse-dir=" + warehouse,
        "fs.native-s3.enabled=true",
        "s3.endpoint=" + moto,
        "s3.region=" + region,
        "s3.path-style-access=true",
        "s3.aws-access-key=test",
        "s3.aws-secret-key=test",
    ]


def write_config(etc: Path, data: Path, port: int, moto: str, region: str = REGION,
                 warehouse: str = "s3://floe-local-warehouse/warehouse", heap: str = "2G") -> None:
    """Writes ``etc/`` for a Trino on 127.0.0.1:``port`` over the moto endpoint ``moto``."""
    (etc / "catalog").mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    files = {
        "node.properties": [
            "node.environment=floe_local",
            "node.id=floe-local-athena",
            f"node.data-dir={data}",
            # Loopback only: nothing outside this machine talks to the stand-in.
            "node.bind-ip=127.0.0.1",
            "node.internal-address=127.0.0.1",
        ],
        "jvm.config": [
            "-server",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djdk.attach.allowAttachSelf=true",
            # Athena reads a timestamp without a zone as UTC.
            "-Duser.timezone=UTC",
            # Two cores: fewer threads start faster.
            "-XX:TieredStopAtLevel=1",
        ],
        "config.properties": [
            "coordinator=true",
            "node-scheduler.include-coordinator=true",
            f"http-server.http.port={port}",
            f"discovery.uri=http://127.0.0.1:{port}",
            # Three fifths of the heap for one query (Trino's default is 30%): the stand-in runs
            # one big statement at a time, as a rebuild of a large table is.
            f"query.max-memory={_query_memory_mb(heap)}MB",
            f"query.max-memory-per-node={_query_memory_mb(heap)}MB",
            "task.concurrency=2",
            "catalog.management=static",
        ],
        "log.properties": ["io.trino=WARN", "io.airlift=WARN"],
        "catalog/iceberg.properties": [
            "connector.name=iceberg",
            "iceberg.catalog.type=glue",
            "iceberg.hive-catalog-name=hive",
            "iceberg.file-format=PARQUET",
            "iceberg.format-version=2",
            # Athena expires snapshots by VACUUM with its own minimum; tests expire at once.
            "iceberg.expire-snapshots.min-retention=0s",
            "iceberg.remove-orphan-files.min-retention=0s",
            # Columns written to Glue with every commit, as Athena does: Glue clients see them.
            "iceberg.glue.cache-table-metadata=true",
            "iceberg.register-table-procedure.enabled=true",
            *_glue_and_s3(moto, region, warehouse),
        ],
        "catalog/hive.properties": [
            "connector.name=hive",
            "hive.metastore=glue",
            "hive.iceberg-catalog-name=iceberg",
            "hive.non-managed-table-writes-enabled=true",
            "hive.timestamp-precision=MILLISECONDS",
            *_glue_and_s3(moto, region, warehouse),
        ],
    }
    for name, lines in files.items():
        (etc / name).write_text("\n".join(lines) + "\n")


def _query_memory_mb(heap: str) -> int:
    """Three fifths of a JVM heap size given as ``2G``, ``6g``, ``2048M`` (at least 512 MB)."""
    text = heap.strip().upper()
    unit = {"G": 1024, "M": 1, "K": 1 / 1024}.get(text[-1:], None)
    mb = float(text[:-1]) * unit if unit else float(text) / (1024 * 1024)
    return max(512, int(mb * 0.6))
