//! The local runtime's adapters: durable queues on SQLite and the landing folder as an object
//! store. They implement the same ports as SQS and S3, so the handlers cannot tell the difference.

pub mod events;
pub mod queue;
pub mod store;
