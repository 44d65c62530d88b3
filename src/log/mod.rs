//! The partition log on disk: segments of record batches in Kafka's own file
//! layout, their offset and time indexes, recovery at open, checkpoints.
//!
//! This layer knows files, offsets and record-batch headers. It never sees a
//! socket or a protocol request struct, and it never decodes records except
//! where a feature truly needs them (the exact offset for a timestamp).

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod error;
pub mod index;
pub mod leader_epoch;
pub mod partition_log;
pub mod producer_state;
pub mod recovery;
pub mod replication;
pub mod retention;
pub mod scrub;
pub mod segment;
pub mod transactions;
pub mod truncation;
pub mod txn_index;
pub mod validate;
pub mod verified;

pub use batch::{BatchError, BatchHeader, ControlMarker};
pub use error::LogError;
pub use leader_epoch::{EpochEntry, LeaderEpochFileCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
pub use partition_log::{AppendInfo, AppendOrigin, FetchSlice, Log, LogConfig, TimestampType};
pub use producer_state::ProducerError;
pub use txn_index::AbortedTxn;
pub use validate::Codec;
