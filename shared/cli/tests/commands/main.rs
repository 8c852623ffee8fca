//! The `floe` CLI, run as a user runs it.
//! One test binary (each integration-test file links the whole workspace: one binary instead of
//! several keeps a fresh build's disk and link time down); every module is one former test file.

mod aws;
mod aws_local;
mod cli;
mod cost;
mod drift;
mod expect;
mod ledger;
mod maintain;
mod models;
mod progress;
