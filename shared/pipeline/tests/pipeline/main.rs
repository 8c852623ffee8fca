//! The pipeline's integration tests: the local runtime, its queue and the SCD2 history.
//! One test binary (each integration-test file links the whole workspace: one binary instead of
//! several keeps a fresh build's disk and link time down); every module is one former test file.

mod drift_property;
mod landing_chunks;
mod local_queue;
mod pipeline_local;
mod rejected_batches;
mod scd2_history;
