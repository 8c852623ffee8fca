"""A local Athena: moto (S3, SQS, EventBridge, Glue) with Athena's API answered by Trino.

Athena engine v3 runs Trino; this package puts the real Trino (Iceberg and Hive connectors on
moto's Glue and S3) behind Athena's API so that floe's production path, and any Athena client,
runs on one machine. Layout:

- ``dialect``: Athena's SQL to Trino's, one small rule per difference, and what Athena refuses;
- ``athena``: the Athena actions (StartQueryExecution, GetQueryExecution, GetQueryResults, ...)
  answered by running the statement on Trino in a thread;
- ``glue``: moto's Glue made to keep real Glue's optimistic concurrency (a stale ``VersionId``
  is refused), plus the column-statistics calls Trino makes;
- ``trino``: the Trino configuration (catalogs pointing at the moto endpoint);
- ``__main__``: ``python -m aws_local serve|trino-config``, used by ``scripts/aws-local.sh``.
"""
