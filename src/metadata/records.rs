//! The records of the metadata log: what the controller quorum agrees on.
//!
//! They carry what Kafka's `__cluster_metadata` records carry (a broker's
//! registration and fencing, topics, partitions with replicas, ISR, leader and
//! epochs, configs, producer-id blocks), in Vltava's own encoding: the log is
//! replicated by openraft among Vltava nodes, never read by a Kafka tool.
//! A batch of records is applied atomically, as one Raft entry.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One Raft entry's worth of records, applied together or not at all.
pub type RecordBatch = Vec<MetadataRecord>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// The cluster's id (Kafka's `cluster.id`), set by the first node to
    /// start; a later one changes nothing.
    ClusterId(String),
    /// A broker (re)registers: a new incarnation replaces the old one.
    RegisterBroker(BrokerRegistration),
    /// The broker's incarnation is fenced (silent, or shutting down) or not.
    BrokerFencing {
        id: i32,
        incarnation: Uuid,
        fenced: bool,
    },
    Topic(TopicRecord),
    /// A partition, whole: created, or changed (leader, ISR, replicas).
    Partition(PartitionRecord),
    RemoveTopic {
        id: Uuid,
    },
    /// Kafka's ConfigRecord: `value: None` deletes the key.
    Config(ConfigRecord),
    /// The block of producer ids `[block_start, next_producer_id)` is handed
    /// to `broker`; refused unless `block_start` is still the first free id.
    ProducerIds {
        broker: i32,
        block_start: i64,
        next_producer_id: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: i32,
    /// Kafka's incarnation id: new at every start of the process.
    pub incarnation: Uuid,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
}

/// An advertised listener of a broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub id: Uuid,
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub topic_id: Uuid,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1 when no replica can lead.
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped by every change of the partition.
    pub partition_epoch: i32,
    /// A reassignment in progress (Kafka's `addingReplicas`): replicas in
    /// `replicas` being filled, not yet in the target's ISR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    /// A reassignment in progress (Kafka's `removingReplicas`): replicas in
    /// `replicas` to drop once the target replicas are all in sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

impl PartitionRecord {
    /// Whether a reassignment of the partition is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }
}

/// Kafka's config resource types, by their wire values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic = 2,
    Broker = 4,
    Group = 32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    pub resource: ConfigResource,
    /// The topic or group name; a broker's id, or "" for the cluster default.
    pub resource_name: String,
    pub name: String,
    pub value: Option<String>,
}
