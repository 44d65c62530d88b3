//! Vltava: a Kafka-compatible event streaming broker.
//!
//! Layers, top to bottom (a layer only calls the ones below it):
//! `net` (frames, connections) → `api` (one handler per API family) →
//! `broker` (topics, partitions, metadata, group commit) → `log` (segments on disk).
//! `server` wires them together; `config` holds Kafka-named settings.

pub mod admin;
pub mod alloc;
pub mod api;
pub mod broker;
#[cfg(feature = "cli")]
pub mod cli;
pub mod clock;
pub mod config;
pub mod group;
pub mod health;
pub mod interbroker;
pub mod log;
pub mod logging;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod server;
pub mod shutdown;
pub mod txn;
