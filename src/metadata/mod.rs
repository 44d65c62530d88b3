//! The cluster's metadata: records replicated among the controller quorum by
//! Raft (openraft), applied on every node to one immutable image.
//!
//! `records.rs` says what can change, `image.rs` what the cluster looks like
//! after a prefix of the log, `log_store.rs` and `state_machine.rs` are
//! openraft's storage on a voter's disk, `network.rs` the voters' RPCs, and
//! `controller.rs` the active controller's watch over the brokers' heartbeats,
//! `observer.rs` a broker-only node's fetch of the image from the voters, and
//! `quorum.rs` ties them into the one handle the broker uses.

pub mod controller;
pub mod election;
pub mod image;
pub mod log_store;
pub mod network;
pub mod observer;
pub mod placement;
pub mod quorum;
pub mod reassignment;
pub mod records;
pub mod state_machine;

use std::io::Cursor;

pub use image::{MetadataImage, Refused};
pub use quorum::{MetadataQuorum, ProposeError, QuorumConfig, QuorumState};
pub use records::{MetadataRecord, RecordBatch};

openraft::declare_raft_types!(
    /// openraft's types for the metadata log: an entry is a batch of records.
    pub RaftTypes:
        D = RecordBatch,
        R = Result<(), image::Refused>,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<RaftTypes>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
