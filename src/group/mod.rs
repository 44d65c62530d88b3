//! Consumer groups: the classic group state machine, the coordinator that
//! hosts every group and its committed offsets, and their durable records in
//! `__consumer_offsets`.
//!
//! Sits beside `broker/` in the broker-state layer: called by `api/`, writes
//! through partitions of the internal topic, never touches sockets.

pub mod assignment;
pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod consumer_records;
pub mod coordinator;
mod member;
pub mod records;

pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};
