//! floe's workspace-level tests: other Iceberg readers, the AWS adapters on moto, the Athena path on the stand-in.
//! One test binary (each integration-test file links the whole workspace: one binary instead of
//! several keeps a fresh build's disk and link time down); every module is one former test file.

mod athena;
mod athena_lake;
mod athena_sql;
mod aws_chain;
mod drift;
mod interop_pipeline;
mod interop_pyiceberg;
mod lake_contract;
mod port_contracts;
mod silver_on_both_engines;
mod structure;
